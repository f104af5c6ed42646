"""whisperft: fine-tune OpenAI Whisper to a language, then measure and use it."""

__version__ = "0.1.0"
