"""``whisperft export --to ct2``: an HF Whisper folder -> a faster-whisper (CTranslate2) folder, parity-checked."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.parity import check_parity, tolerance_for
from whisperft.io import staged_dir
from whisperft.models.registry import load_model, load_processor
from whisperft.models.whisper import (
    FULL_WINDOW_POSITIONS,
    POSITIONS_PER_SECOND,
    feature_extractor_for,
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
    """The model itself, or for a short audio context a 30 s copy: faster-whisper pads every window to 30 s."""
    cfg = AutoConfig.from_pretrained(model_path)
    if int(cfg.max_source_positions) >= FULL_WINDOW_POSITIONS:
        return model_path
    logger.warning(
        "%s was trained with a %.0f s audio context; it is exported with Whisper's 30 s window, because "
        "faster-whisper pads every window to 30 s (its encoder positions are restored exactly; see README)",
        model_path,
        cfg.max_source_positions / POSITIONS_PER_SECOND,
    )
    model, processor = load_model(model_path), load_processor(model_path)
    restore_full_window(model)
    processor.feature_extractor = feature_extractor_for(model.config)
    model.save_pretrained(work, safe_serialization=True)
    processor.save_pretrained(work)
    return str(work)


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
        for required in REQUIRED_FILES:
            if not (tmp / required).is_file():
                raise WhisperftError(f"export is missing {required}")
        if not verify_audio:
            return ExportResult(out, quantization, None, tolerance_for(quantization), [])
        parity = check_parity(model_path, tmp, processor.tokenizer, verify_audio, lang, quantization)
    return ExportResult(out, quantization, parity.wer, parity.tolerance, parity.pairs)
