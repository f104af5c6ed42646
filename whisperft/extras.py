"""The optional extras (``pip install 'whisperft[X]'``): which import each enables, and the one error
raised when a command needs one that is not installed.

A missing extra is a usage error (exit code 2): the command cannot run as asked until the user installs
it, and the message names the install line. ``whisperft doctor`` reports the same table.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from whisperft.errors import UsageError

EXTRAS = {  # import name -> (distribution, extra, what it enables)
    "ctranslate2": ("ctranslate2", "ct2", "export --to ct2, eval of CTranslate2 folders"),
    "faster_whisper": ("faster-whisper", "ct2", "transcribe with CTranslate2 folders"),
    "gradio": ("gradio", "ui", "whisperft serve (the web app)"),
    "gguf": ("gguf", "ggml", "export --to ggml --quantization q8_0 / q5_0"),
    "pywhispercpp": ("pywhispercpp", "ggml", "export --to ggml's check in whisper.cpp"),
    "onnx": ("onnx", "onnx", "export --to onnx"),
    "onnxscript": ("onnxscript", "onnx", "export --to onnx (torch's exporter)"),
    "onnxruntime": ("onnxruntime", "onnx", "export --to onnx's check in onnxruntime"),
    "whisper": ("openai-whisper", "openai", "export --to openai's check in openai-whisper"),
    "ray": ("ray", "sweep", "whisperft sweep (Ray Tune)"),
    "optuna": ("optuna", "sweep", "whisperft sweep --search optuna"),
}


def install_command(extra: str) -> str:
    """The command that installs an extra: ``pip install 'whisperft[ct2]'``."""
    return f"pip install 'whisperft[{extra}]'"


class MissingExtra(UsageError):
    """An optional dependency a command needs is not installed (exit code 2)."""


def missing_extra(needed_for: str, modules: Iterable[str], hint: str = "") -> MissingExtra:
    """The error for ``needed_for`` (e.g. "export --to onnx") lacking ``modules`` (import names, keys of
    ``EXTRAS``): one line naming the distributions and the install command. ``hint``: an alternative,
    appended after a comma (e.g. "or convert it with whisperft import-ct2")."""
    names = list(dict.fromkeys(modules))
    dists = ", ".join(EXTRAS[m][0] if m in EXTRAS else m for m in names)
    extras = ",".join(dict.fromkeys(EXTRAS[m][1] for m in names if m in EXTRAS))
    install = install_command(extras) if extras else f"pip install {dists}"
    return MissingExtra(f"{needed_for} needs {dists}: {install}" + (f", {hint}" if hint else ""))


def require(needed_for: str, modules: Iterable[str], hint: str = "") -> None:
    """Raise ``missing_extra`` when any of ``modules`` cannot be imported; checked before any work is done."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise missing_extra(needed_for, missing, hint)
