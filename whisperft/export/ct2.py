"""``whisperft export --to ct2``: an HF Whisper folder -> a faster-whisper (CTranslate2) folder, parity-checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from transformers import AutoConfig

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.parity import check_parity, tolerance_for
from whisperft.io import staged_dir
from whisperft.models.registry import load_processor

QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "bfloat16", "float32")
FULL_WINDOW_POSITIONS = 1500  # encoder positions of Whisper's 30 s window
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
    cfg = AutoConfig.from_pretrained(model_path)
    if int(cfg.max_source_positions) != FULL_WINDOW_POSITIONS:
        raise UsageError(
            f"{model_path} was trained with a {cfg.max_source_positions / 50:.1f} s audio context "
            "(model.audio_context_s); CTranslate2 and faster-whisper always feed 30 s windows, so the export "
            "would transcribe garbage. Retrain without audio_context_s to export"
        )
    processor = load_processor(model_path)
    lang = str(language or "en").strip("<|>")
    out = Path(out)
    with staged_dir(out) as tmp:
        try:
            TransformersConverter(model_path, copy_files=["tokenizer.json"]).convert(
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
