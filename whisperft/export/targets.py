"""The export targets, their quantizations and the extras they need. Light to import: the command line and
each target's module read it, and a request is checked against it before any model loads."""

from __future__ import annotations

from whisperft.errors import UsageError
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


def target_entry(target: str) -> tuple[str, str, str, tuple[str, ...]]:
    """``TARGETS[target]``; UsageError naming the choices for any other."""
    if target not in TARGETS:
        raise UsageError(f"--to must be one of {', '.join(TARGETS)}, got {target!r}")
    return TARGETS[target]


def check_names(target: str, quantization: str | None) -> str:
    """The quantization to use for ``target`` (its default when None); UsageError for an unknown target or
    quantization."""
    _, _, default, offered = target_entry(target)
    quantization = quantization or default
    if quantization not in offered:
        raise UsageError(f"--quantization for {target} must be one of {', '.join(offered)}, got {quantization!r}")
    return quantization


def check_request(target: str, quantization: str | None) -> str:
    """``check_names``, and ``extras.MissingExtra`` (exit 2) when the target's extra is not installed: checked
    before any work."""
    quantization = check_names(target, quantization)
    require(f"export --to {target}", REQUIRES[target])
    return quantization
