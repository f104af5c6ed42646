"""Tiny randomly initialised Whispers with the real tokenizer: fast stand-ins for tests, benchmarks and demos
(not packaged; see devkit/__init__)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from whisperft.models.bundled import bundled_suppress_tokens, bundled_tokenizer_file
from whisperft.models.whisper import build_generation_config, new_processor


def make_tiny_model(
    folder: Path,
    *,
    multilingual: bool = True,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised small Whisper with the real tokenizer: a complete HF model folder."""
    processor = new_processor(bundled_tokenizer_file(multilingual))
    tok = processor.tokenizer
    vocab = 51865 if multilingual else 51864
    cfg = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    suppress, begin = bundled_suppress_tokens(multilingual)
    model.generation_config = build_generation_config(tok, cfg, suppress_tokens=suppress, begin_suppress_tokens=begin)
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
