"""Export stage: a saved Whisper -> the formats other clients run, each parity-checked in its own client.

One module per target: ``ct2`` (faster-whisper), ``ggml`` (whisper.cpp), ``onnx`` (onnxruntime, optimum's
layout) and ``openai`` (openai-whisper); ``standard`` makes the stock-Whisper copy the first three need
(30 s window, Whisper's language tokens) and ``parity`` compares transcripts.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from whisperft.errors import UsageError
from whisperft.export.standard import ExportResult
from whisperft.extras import require

# target -> (module, function, default quantization, the quantizations it offers)
TARGETS = {
    "ct2": ("ct2", "export_ct2", "int8", ("int8", "int8_float16", "int8_float32", "float16", "bfloat16", "float32")),
    "ggml": ("ggml", "export_ggml", "f16", ("f16", "q8_0", "q5_0")),
    "onnx": ("onnx", "export_onnx", "float32", ("float32", "int8")),
    "openai": ("openai", "export_openai", "float16", ("float16", "float32")),
}


# target -> the modules its export and parity check import (``extras.EXTRAS`` names the extra of each)
REQUIRES = {
    "ct2": ("ctranslate2",),
    "ggml": ("gguf", "pywhispercpp"),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "openai": ("whisper",),
}


def _target(target: str) -> tuple[str, str, str, tuple[str, ...]]:
    """``TARGETS[target]``; UsageError naming the choices for any other."""
    if target not in TARGETS:
        raise UsageError(f"--to must be one of {', '.join(TARGETS)}, got {target!r}")
    return TARGETS[target]


def check_request(target: str, quantization: str | None) -> str:
    """The quantization to use for ``target`` (its default when None). Raises UsageError for an unknown
    target or quantization, ``extras.MissingExtra`` (exit 2) when its extra is not installed (before any work)."""
    _, _, default, offered = _target(target)
    quantization = quantization or default
    if quantization not in offered:
        raise UsageError(f"--quantization for {target} must be one of {', '.join(offered)}, got {quantization!r}")
    require(f"export --to {target}", REQUIRES[target])
    return quantization


def export_model(
    target: str,
    model_path: str,
    out: Path,
    quantization: str | None,
    verify_audio: list[np.ndarray] | None,
    language: str | None,
) -> ExportResult:
    """Export ``model_path`` to ``out`` for ``target`` (a key of ``TARGETS``), parity-checked on ``verify_audio``
    unless it is None. ``quantization`` None: the target's default. Raises UsageError for an unknown target
    or quantization, MissingExtra when its extra is missing, WhisperftError when the export or its check fails."""
    module, function, default, _ = _target(target)
    run = getattr(importlib.import_module(f"whisperft.export.{module}"), function)  # deferred: torch, clients
    return run(model_path, out, quantization or default, verify_audio, language)  # each module checks the rest
