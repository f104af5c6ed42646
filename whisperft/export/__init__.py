"""The export stage: a fine-tuned model -> CTranslate2 / faster-whisper, parity-checked."""
