"""``whisperft export --to ct2``: an HF Whisper folder -> a faster-whisper (CTranslate2) folder, parity-checked."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.parity import check_parity
from whisperft.export.standard import ExportResult, model_language, parity_code, stock_whisper
from whisperft.export.targets import TARGETS
from whisperft.extras import missing_extra
from whisperft.io import cache_dir, is_ct2_folder, staged_dir, waiting_lock
from whisperft.languages import MODEL_KEY
from whisperft.models.bundled import ensure_bundled_ct2
from whisperft.models.registry import load_processor, resolve_model
from whisperft.models.whisper import FULL_WINDOW_POSITIONS

logger = logging.getLogger("whisperft")

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


def ct2_folder(spec: str) -> str | None:
    """The CTranslate2 folder that runs ``spec`` on faster-whisper, the fast path, when the ct2 extra is
    installed: the folder itself; a bundled model as it ships; another model exported once (int8, by
    ``whisperft export``'s converter) into the cache, keyed by its files. None without the extra, or for
    a model trained with a shorter audio context than Whisper's 30 s (``model.audio_context_s``)."""
    if is_ct2_folder(Path(spec).expanduser()):
        return spec
    if not all(importlib.util.find_spec(m) for m in ("ctranslate2", "faster_whisper")):
        return None
    if spec.startswith("bundled:"):
        return str(ensure_bundled_ct2(spec.split(":", 1)[1]))
    path = Path(resolve_model(spec))
    if int(AutoConfig.from_pretrained(path).max_source_positions) < FULL_WINDOW_POSITIONS:
        return None  # trained with a short audio context: PyTorch keeps its window, faster-whisper pads to 30 s
    key = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        key.update(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}".encode())
    target = cache_dir() / "ct2" / f"{path.name}-{key.hexdigest()[:16]}"
    with waiting_lock(target.with_name(f".{target.name}.lock")):
        if not (target / "model.bin").is_file():
            logger.info("converting %s to CTranslate2 (int8, once) in %s for faster-whisper", spec, target)
            export_ct2(str(path), target, "int8")
    return str(target)
