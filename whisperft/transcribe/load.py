"""Load a transcription engine for a model spec: faster-whisper for a CTranslate2 folder, else PyTorch.

Shared by ``whisperft transcribe`` and ``whisperft serve``. torch and transformers are imported
only on the PyTorch path, so a CTranslate2 model starts without them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from whisperft.io import is_ct2_folder
from whisperft.languages import decode_language, detection_warning
from whisperft.models import quiet_transformers
from whisperft.transcribe.files import Engine

logger = logging.getLogger("whisperft")


def load_engine(
    spec: str, lang: str | None = None, compute_type: str = "default", trust_pickle: bool = False, quiet: bool = True
) -> Engine:
    """The engine for ``spec`` (a spec, run, folder or CTranslate2 folder), checked for ``lang``
    (None: the model's own language, detected when it has none; ``auto``: always detect).

    ``quiet`` turns transformers' info logs and progress bars off before it loads.
    """
    if is_ct2_folder(Path(spec).expanduser()):
        from whisperft.transcribe.fw_engine import FasterWhisperTranscriber  # deferred: imports ctranslate2

        engine = FasterWhisperTranscriber(Path(spec).expanduser(), compute_type)
        decode_language(lang, engine.own, engine.multilingual, engine.languages, spec)
    else:
        if quiet:
            quiet_transformers()
        from whisperft.transcribe.run import load_transcriber  # deferred: imports torch

        engine = load_transcriber(spec, lang, trust_pickle)
    warning = detection_warning(lang, engine.own, spec)
    if warning:
        logger.warning(warning)
    return engine
