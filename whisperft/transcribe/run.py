"""Load the PyTorch engine for ``whisperft transcribe`` (a CTranslate2 folder goes to ``fw_engine`` instead)."""

from __future__ import annotations

import torch

from whisperft.models.registry import load_model, load_processor, resolve_model
from whisperft.models.whisper import check_language
from whisperft.transcribe.engine import Transcriber


def load_transcriber(model: str, language: str, trust_pickle: bool = False) -> Transcriber:
    """The PyTorch model for ``model`` (a spec, run or folder), on CUDA when present, checked for ``language``."""
    path = resolve_model(model)
    mdl = load_model(path, trust_pickle=trust_pickle)
    check_language(mdl, language)
    return Transcriber(mdl, load_processor(path), device="cuda" if torch.cuda.is_available() else None)
