"""What a transcription engine takes and returns, shared by the PyTorch engine (``engine``), the
CTranslate2 one (``fw_engine``) and every caller: ``whisperft transcribe``, ``serve``, and prepare's
long recordings.

The request's language is decided once, into a ``languages.Decoding``, by ``Engine.decoding`` right
after the model is loaded; the options carry that decision down to the decoder. The shape follows
openai/whisper's ``DecodingOptions`` and faster-whisper's ``TranscriptionInfo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from whisperft.languages import Decoding, ModelLanguage
from whisperft.transcribe.request import BATCH_SIZE
from whisperft.transcribe.subtitles import Segment


@dataclass(frozen=True)
class DecodeOptions:
    """How an engine decodes a batch of recordings.

    ``decoding``: the language decided for the model (``Engine.decoding``); ``num_beams``: None for the
    engine's ``default_beams``; ``batch_size``: windows per batch (all recordings' chunks share them);
    ``timestamps``: timestamped segments inside each chunk (else one segment per chunk); ``words``:
    segments carry word timestamps (the model needs ``alignment_heads``, which OpenAI's checkpoints and
    their fine-tunes have).
    """

    decoding: Decoding
    task: str = "transcribe"
    num_beams: int | None = None
    batch_size: int = BATCH_SIZE
    timestamps: bool = True
    words: bool = False


@dataclass(frozen=True)
class Transcription:
    """One recording's result: the language reported (None for a recording without speech), the text,
    and its segments with times in seconds on the recording."""

    language: str | None
    text: str
    segments: list[Segment] = field(default_factory=list)


class Engine(Protocol):
    """What both engines offer: recordings in, one ``Transcription`` per recording out."""

    own: ModelLanguage | None  # the language the model was fine-tuned for, if any
    multilingual: bool
    default_beams: int  # the beam width when num_beams is None (``text.CT2_BEAMS``, ``text.PYTORCH_BEAMS``)
    languages: frozenset[str]  # codes of the language tokens the model has (``languages.token_languages``)
    name: str  # the model, for messages

    def decoding(self, requested: str | None) -> Decoding:
        """The language this model decodes ``requested`` in (``languages.decode_language``); UsageError
        for a language it cannot decode."""
        ...

    def transcribe(self, audios: list[np.ndarray], options: DecodeOptions) -> list[Transcription]:
        """16 kHz mono recordings of any length -> one Transcription each, in order."""
        ...
