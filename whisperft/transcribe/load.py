"""Load a transcription engine for a model spec: faster-whisper for a CTranslate2 folder, else PyTorch;
and decide, once, the language it decodes a request in.

Shared by ``whisperft transcribe``, ``whisperft serve`` and prepare's long recordings. torch and
transformers are imported only on the PyTorch path, so a CTranslate2 model starts without them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from whisperft.io import is_ct2_folder
from whisperft.languages import Decoding, detection_warning
from whisperft.models import quiet_transformers
from whisperft.transcribe.decoding import Engine

logger = logging.getLogger("whisperft")


def load_engine(
    spec: str, compute_type: str = "default", trust_pickle: bool = False, quiet: bool = True, name: str | None = None
) -> Engine:
    """The engine for ``spec`` (a spec, run, folder or CTranslate2 folder). ``compute_type``: CTranslate2's
    (``default``: as exported); ``name``: the model as messages name it (default ``spec``); ``quiet`` turns
    transformers' info logs and progress bars off before it loads.
    On the PyTorch path the model runs on CUDA when there is a GPU."""
    if is_ct2_folder(Path(spec).expanduser()):
        from whisperft.transcribe.fw_engine import FasterWhisperTranscriber  # deferred: imports ctranslate2

        return FasterWhisperTranscriber(Path(spec).expanduser(), compute_type, name=name or spec)
    if quiet:
        quiet_transformers()
    import torch  # deferred: slow to import, and a CTranslate2 model does without it

    from whisperft.models.registry import load_model, load_processor, resolve_model  # deferred: transformers
    from whisperft.transcribe.engine import Transcriber  # deferred: imports torch

    path = resolve_model(spec)
    model = load_model(path, trust_pickle=trust_pickle)
    return Transcriber(
        model, load_processor(path), device="cuda" if torch.cuda.is_available() else None, name=name or spec
    )


def spec_or_newest(spec: str | None) -> str:
    """``spec``, or the newest finished run when it is None (``models.registry.model_or_newest``, imported only
    then: the registry imports transformers, which a CTranslate2 model does without)."""
    if spec:
        return spec
    from whisperft.models.registry import model_or_newest  # deferred: imports transformers

    return model_or_newest(None)


def decide_language(engine: Engine, requested: str | None) -> Decoding:
    """The language ``engine`` decodes a request for ``requested`` in (None: the model's own, detected when
    it has none; ``auto``: always detect), decided once and passed down in ``DecodeOptions``. Logs a warning
    for ``auto`` on a single-language fine-tune (``languages.detection_warning``). UsageError for a
    language the model cannot decode."""
    decoding = engine.decoding(requested)
    warning = detection_warning(requested, engine.own, engine.name)
    if warning:
        logger.warning(warning)
    return decoding
