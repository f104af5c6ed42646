"""``whisperft export --to ct2``: an HF Whisper folder -> a faster-whisper (CTranslate2) folder, parity-checked."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig, GenerationConfig

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.parity import check_parity, tolerance_for
from whisperft.io import staged_dir
from whisperft.languages import MODEL_KEY, ModelLanguage, get_language
from whisperft.models.registry import load_model, load_processor
from whisperft.models.whisper import (
    FULL_WINDOW_POSITIONS,
    POSITIONS_PER_SECOND,
    feature_extractor_for,
    fold_added_token,
    restore_full_window,
)

logger = logging.getLogger("whisperft")

QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "bfloat16", "float32")
REQUIRED_FILES = ("model.bin", "tokenizer.json", "preprocessor_config.json", "config.json")


@dataclass
class ExportResult:
    out: Path
    quantization: str
    parity_wer: float | None
    tolerance: float
    pairs: list[tuple[str, str]]


def export_ct2(
    model_path: str,
    out: str | Path,
    quantization: str = "int8",
    verify_audio: list[np.ndarray] | None = None,
    language: str | None = None,
) -> ExportResult:
    """Export an HF Whisper to a faster-whisper folder, then check both transcribe alike."""
    try:
        from ctranslate2.converters import TransformersConverter  # deferred: an optional extra, slow to import
    except ImportError:
        raise WhisperftError("export needs the ctranslate2 package: pip install 'whisperft[ct2]'") from None
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    lang = str(language or "en").strip("<|>")
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="whisperft-export-") as work:
        model_path = _full_window(model_path, Path(work))
        return _convert(TransformersConverter, model_path, out, quantization, verify_audio, lang)


def _full_window(model_path: str, work: Path) -> str:
    """The model itself, or a copy that faster-whisper runs: Whisper's 30 s window (faster-whisper pads
    every window to 30 s) and only Whisper's language tokens (faster-whisper refuses any other code)."""
    cfg = AutoConfig.from_pretrained(model_path)
    short = int(cfg.max_source_positions) < FULL_WINDOW_POSITIONS
    own = ModelLanguage.read(cfg.to_dict(), _generation_language(model_path))
    if not short and not (own and own.added_token):
        return model_path
    if short:
        logger.warning(
            "%s was trained with a %.0f s audio context; it is exported with Whisper's 30 s window, because "
            "faster-whisper pads every window to 30 s (its encoder positions are restored exactly; see README)",
            model_path,
            cfg.max_source_positions / POSITIONS_PER_SECOND,
        )
    model, processor = load_model(model_path), load_processor(model_path)
    restore_full_window(model)
    processor.feature_extractor = feature_extractor_for(model.config)
    processor.save_pretrained(work)
    if own and own.added_token:
        _fold(model, work, own)
    model.save_pretrained(work, safe_serialization=True)
    return str(work)


def _fold(model: Any, work: Path, own: ModelLanguage) -> None:
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
        "%s is not one of Whisper's language tokens, which faster-whisper requires: exported under %s "
        "(the trained row moved there); transcribe with language=%r",
        own.language.token, get_language(folded.token).token, folded.token,
    )  # fmt: skip


def _record_language(model_path: str, ct2_config: Path) -> None:
    """Copy the fine-tune's language (``languages.MODEL_KEY``) into the CTranslate2 config.json."""
    own = ModelLanguage.read(AutoConfig.from_pretrained(model_path).to_dict(), _generation_language(model_path))
    if own is None:
        return
    config = json.loads(ct2_config.read_text(encoding="utf-8"))
    config[MODEL_KEY] = own.to_dict()
    ct2_config.write_text(json.dumps(config, indent=2), encoding="utf-8")


def _generation_language(model_path: str) -> str | None:
    try:
        return getattr(GenerationConfig.from_pretrained(model_path), "language", None)
    except OSError:  # no generation_config.json
        return None


def _convert(
    converter: Any, model_path: str, out: Path, quantization: str, verify_audio: list[np.ndarray] | None, lang: str
) -> ExportResult:
    processor = load_processor(model_path)
    with staged_dir(out) as tmp:
        try:
            converter(model_path, copy_files=["tokenizer.json"]).convert(
                str(tmp), quantization=quantization, force=True
            )
        except Exception as exc:
            raise WhisperftError(f"ctranslate2 conversion failed: {exc}") from None
        processor.feature_extractor.to_json_file(str(tmp / "preprocessor_config.json"))
        _record_language(model_path, tmp / "config.json")
        for required in REQUIRED_FILES:
            if not (tmp / required).is_file():
                raise WhisperftError(f"export is missing {required}")
        if not verify_audio:
            return ExportResult(out, quantization, None, tolerance_for(quantization), [])
        parity = check_parity(model_path, tmp, processor.tokenizer, verify_audio, lang, quantization)
    return ExportResult(out, quantization, parity.wer, parity.tolerance, parity.pairs)
