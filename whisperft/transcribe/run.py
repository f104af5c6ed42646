"""Load the PyTorch engine for ``whisperft transcribe`` (a CTranslate2 folder goes to ``fw_engine`` instead)."""

from __future__ import annotations

import torch

from whisperft.languages import decode_language
from whisperft.models.registry import load_model, load_processor, resolve_model
from whisperft.transcribe.engine import Transcriber


def load_transcriber(model: str, language: str | None, trust_pickle: bool = False) -> Transcriber:
    """The PyTorch model for ``model`` (a spec, run or folder), on CUDA when present, checked for ``language``
    (None: the model's own; ``auto``: detect)."""
    path = resolve_model(model)
    mdl = load_model(path, trust_pickle=trust_pickle)
    engine = Transcriber(mdl, load_processor(path), device="cuda" if torch.cuda.is_available() else None)
    decode_language(language, engine.own, engine.multilingual, engine.languages, model)
    return engine
