"""A model as clients that know only stock Whisper run it: faster-whisper, whisper.cpp and openai-whisper.

They pad every window to Whisper's 30 s and know only Whisper's language tokens, so a model trained with
a short ``audio_context_s`` gets its 30 s position table back, and a language token whisperft added has
its trained row moved into its fallback language's slot (``models.whisper.fold_added_token``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoConfig, GenerationConfig

from whisperft.export.parity import Parity, tolerance_for
from whisperft.languages import ModelLanguage, get_language
from whisperft.models.registry import load_model, load_processor
from whisperft.models.whisper import (
    FULL_WINDOW_POSITIONS,
    POSITIONS_PER_SECOND,
    feature_extractor_for,
    fold_added_token,
    restore_full_window,
)

logger = logging.getLogger("whisperft")


@dataclass
class ExportResult:
    """What ``whisperft export`` wrote and how closely it transcribes like the HF model."""

    out: Path
    quantization: str
    parity_wer: float | None  # normalized WER of the export's transcripts against the HF model's; None: unchecked
    tolerance: float
    pairs: list[tuple[str, str]]  # (HF text, export's text) per parity clip

    @classmethod
    def checked(cls, out: Path, quantization: str, parity: Parity | None) -> ExportResult:
        """The result of an export whose parity check gave ``parity`` (None: not checked)."""
        if parity is None:
            return cls(out, quantization, None, tolerance_for(quantization), [])
        return cls(out, quantization, parity.wer, parity.tolerance, parity.pairs)


def parity_code(language: str | None) -> str:
    """The bare code the parity check prompts with: ``sv`` for ``sv`` or ``<|sv|>``; ``en`` when None."""
    return str(language or "en").strip("<|>")


def generation_language(model_path: str | Path) -> str | None:
    """The language a saved model prompts with by default (its generation_config.json), or None."""
    try:
        return getattr(GenerationConfig.from_pretrained(str(model_path)), "language", None)
    except OSError:  # no generation_config.json
        return None


def model_language(model_path: str | Path) -> ModelLanguage | None:
    """The fine-tune's language as ``languages.ModelLanguage`` (from config.json), or None."""
    cfg = AutoConfig.from_pretrained(str(model_path))
    return ModelLanguage.read(cfg.to_dict(), generation_language(model_path))


def stock_whisper(model_path: str, work: Path, client: str) -> str:
    """``model_path`` itself, or a copy saved in ``work`` that ``client`` runs: Whisper's 30 s window
    (its encoder positions restored exactly) and only Whisper's language tokens."""
    cfg = AutoConfig.from_pretrained(model_path)
    short = int(cfg.max_source_positions) < FULL_WINDOW_POSITIONS
    own = model_language(model_path)
    if not short and not (own and own.added_token):
        return model_path
    if short:
        logger.warning(
            "%s was trained with a %.0f s audio context; it is exported with Whisper's 30 s window, because "
            "%s pads every window to 30 s (its encoder positions are restored exactly; see docs/deploy.md)",
            model_path,
            cfg.max_source_positions / POSITIONS_PER_SECOND,
            client,
        )
    model, processor = load_model(model_path), load_processor(model_path)
    restore_full_window(model)
    processor.feature_extractor = feature_extractor_for(model.config)
    processor.save_pretrained(work)
    if own and own.added_token:
        _fold(model, work, own, client)
    model.save_pretrained(work, safe_serialization=True)
    return str(work)


def _fold(model: Any, work: Path, own: ModelLanguage, client: str) -> None:
    """``fold_added_token`` on the model and on the saved tokenizer files in ``work``."""
    tokenizer_json = json.loads((work / "tokenizer.json").read_text(encoding="utf-8"))
    folded = fold_added_token(model, tokenizer_json)
    (work / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
    config_path = work / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if isinstance(config.get("added_tokens_decoder"), dict):  # transformers 4 writes it; 5 keeps tokenizer.json's
        decoder = config["added_tokens_decoder"]
        config["added_tokens_decoder"] = {k: v for k, v in decoder.items() if v.get("content") != own.language.token}
    extra = config.get("extra_special_tokens") or config.get("additional_special_tokens")
    if isinstance(extra, list):
        key = "extra_special_tokens" if "extra_special_tokens" in config else "additional_special_tokens"
        config[key] = [t for t in extra if t != own.language.token]
    config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    assert folded is not None
    logger.info(
        "%s is not one of Whisper's language tokens, which %s requires: exported under %s "
        "(the trained row moved there); transcribe with language=%r",
        own.language.token,
        client,
        get_language(folded.token).token,
        folded.token,
    )
