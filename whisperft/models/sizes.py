"""The architecture of every released Whisper, so that shapes and parameter counts need no download.

Source: the ``ModelDimensions`` stored in each checkpoint that openai/whisper's ``whisper/__init__.py``
lists (``whisper/model.py``: ``n_mels``, ``n_vocab``, ``n_audio_state`` = ``n_text_state``,
``n_audio_head`` = ``n_text_head``, ``n_audio_layer``, ``n_text_layer``), which each Hub repo's
config.json repeats as ``num_mel_bins``, ``vocab_size``, ``d_model``, ``*_attention_heads``,
``encoder_layers``, ``decoder_layers``. The rest is the same for every size:

- ``*_ffn_dim = 4 * d_model`` (openai/whisper's ``ResidualAttentionBlock``: ``n_mlp = n_state * 4``);
- ``max_source_positions = 1500``: 30 s of audio is 3000 mel frames, halved by the stride-2 convolution;
- ``max_target_positions = 448`` tokens.

Vocabularies: 51864 tokens for the English-only models, 51865 for the multilingual ones, 51866 for
large-v3 and turbo (one more language token, Cantonese); those two also take 128 mel bins, not 80.
Turbo is large-v3 with 4 decoder layers instead of 32.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import WhisperConfig

AUDIO_POSITIONS = 1500  # 3000 mel frames (30 s at 10 ms) after the stride-2 convolution
TEXT_POSITIONS = 448  # the decoder's context, in tokens
FFN_RATIO = 4  # feed-forward width over d_model


@dataclass(frozen=True)
class Dims:
    """One released Whisper's architecture, in openai/whisper's ``ModelDimensions`` terms."""

    n_mels: int  # log-mel bins of the input
    n_vocab: int  # tokens
    n_state: int  # d_model, encoder and decoder alike
    n_head: int  # attention heads per layer
    n_audio_layer: int  # encoder layers
    n_text_layer: int  # decoder layers

    def whisper_config(self) -> WhisperConfig:
        """A ``transformers.WhisperConfig`` of this architecture: right for shapes and parameter counts;
        token ids and generation settings stay transformers' defaults (load the model for those)."""
        return WhisperConfig(
            vocab_size=self.n_vocab,
            num_mel_bins=self.n_mels,
            d_model=self.n_state,
            encoder_layers=self.n_audio_layer,
            decoder_layers=self.n_text_layer,
            encoder_attention_heads=self.n_head,
            decoder_attention_heads=self.n_head,
            encoder_ffn_dim=FFN_RATIO * self.n_state,
            decoder_ffn_dim=FFN_RATIO * self.n_state,
            max_source_positions=AUDIO_POSITIONS,
            max_target_positions=TEXT_POSITIONS,
        )


_MULTI, _EN, _V3 = 51865, 51864, 51866  # vocabulary: multilingual, English-only, large-v3 and turbo
RELEASED = {  # Hub id -> dimensions (source: the module's docstring)
    "openai/whisper-tiny": Dims(80, _MULTI, 384, 6, 4, 4),
    "openai/whisper-tiny.en": Dims(80, _EN, 384, 6, 4, 4),
    "openai/whisper-base": Dims(80, _MULTI, 512, 8, 6, 6),
    "openai/whisper-base.en": Dims(80, _EN, 512, 8, 6, 6),
    "openai/whisper-small": Dims(80, _MULTI, 768, 12, 12, 12),
    "openai/whisper-small.en": Dims(80, _EN, 768, 12, 12, 12),
    "openai/whisper-medium": Dims(80, _MULTI, 1024, 16, 24, 24),
    "openai/whisper-medium.en": Dims(80, _EN, 1024, 16, 24, 24),
    "openai/whisper-large": Dims(80, _MULTI, 1280, 20, 32, 32),  # large-v1
    "openai/whisper-large-v2": Dims(80, _MULTI, 1280, 20, 32, 32),
    "openai/whisper-large-v3": Dims(128, _V3, 1280, 20, 32, 32),
    "openai/whisper-large-v3-turbo": Dims(128, _V3, 1280, 20, 32, 4),
}
