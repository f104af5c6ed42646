"""``whisperft export --to ct2``: an HF Whisper folder -> a faster-whisper (CTranslate2) folder, parity-checked."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.parity import check_parity
from whisperft.export.standard import ExportResult, model_language, parity_code, stock_whisper
from whisperft.export.targets import TARGETS
from whisperft.extras import missing_extra
from whisperft.io import staged_dir
from whisperft.languages import MODEL_KEY
from whisperft.models.registry import load_processor

QUANTIZATIONS = TARGETS["ct2"][3]
REQUIRED_FILES = ("model.bin", "tokenizer.json", "preprocessor_config.json", "config.json")


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
        raise missing_extra("export --to ct2", ["ctranslate2"]) from None
    if quantization not in QUANTIZATIONS:
        raise UsageError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    lang = parity_code(language)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="whisperft-export-") as work:
        model_path = stock_whisper(model_path, Path(work), "faster-whisper")
        return _convert(TransformersConverter, model_path, out, quantization, verify_audio, lang)


def _record_language(model_path: str, ct2_config: Path) -> None:
    """Copy the fine-tune's language (``languages.MODEL_KEY``) into the CTranslate2 config.json."""
    own = model_language(model_path)
    if own is None:
        return
    config = json.loads(ct2_config.read_text(encoding="utf-8"))
    config[MODEL_KEY] = own.to_dict()
    ct2_config.write_text(json.dumps(config, indent=2), encoding="utf-8")


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
        parity = None
        if verify_audio:
            parity = check_parity(model_path, tmp, processor.tokenizer, verify_audio, lang, quantization)
    return ExportResult.checked(out, quantization, parity)
