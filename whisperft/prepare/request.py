"""What ``whisperft prepare`` takes. Light to import (no numpy, no torch): the command line reads its
defaults from here when it starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.text import MAX_ALIGN_CER, MAX_CHARS_PER_SECOND, MAX_CLIP_SECONDS, MIN_CHARS_PER_SECOND

AUDIO_FORMATS = ("opus", "flac")  # --audio: the codecs a store may keep each clip's audio in (data.store)


@dataclass(frozen=True)
class PrepareRequest:
    """Everything ``whisperft prepare`` takes. These defaults are the only copy: the CLI reads them.

    ``source``: a Common Voice folder or archive, a manifest, an audiofolder, a ``save_to_disk`` folder,
    ``hub:NAME[:CONFIG]``, or a folder of long recordings with their text (None: FLEURS for ``lang``);
    ``model``: the model whose tokenizer and mel bins the store is made for; ``out``: the store folder
    (None: ``data/<language code>``); ``max_duration``: seconds, longer clips are skipped; ``num_proc``:
    worker processes (None: every core); ``validation_fraction``: the share of train made validation when
    the source has none; ``min_chars_per_second``/``max_chars_per_second``: the plausible speaking rate
    (``prepare.filters.RateBounds``); ``audio``: also keep each clip's audio (opus or flac) for
    waveform augmentation; ``align_model`` and ``max_cer``: long recordings' aligner, and the local CER
    a sentence may have against its transcript (``data.align``).
    """

    source: str | None
    lang: str
    model: str = "small"
    out: Path | None = None
    max_duration: float = MAX_CLIP_SECONDS
    num_proc: int | None = None
    validation_fraction: float = 0.1
    min_chars_per_second: float = MIN_CHARS_PER_SECOND
    max_chars_per_second: float = MAX_CHARS_PER_SECOND
    audio: str | None = None
    align_model: str = "bundled:base"
    max_cer: float = MAX_ALIGN_CER

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        if not (0 < self.max_duration <= MAX_CLIP_SECONDS):
            out.append(f"--max-duration must be in (0, {MAX_CLIP_SECONDS:g}] seconds, got {self.max_duration}")
        lo, hi = self.min_chars_per_second, self.max_chars_per_second
        if not lo >= 0:
            out.append(f"--min-chars-per-second must be >= 0, got {lo:g}")
        if not hi > 0:
            out.append(f"--max-chars-per-second must be positive, got {hi:g}")
        elif lo >= 0 and not lo < hi:
            out.append(f"--min-chars-per-second ({lo:g}) must be below --max-chars-per-second ({hi:g})")
        if self.audio is not None and self.audio not in AUDIO_FORMATS:
            out.append(f"--audio must be one of {', '.join(AUDIO_FORMATS)}, got {self.audio!r}")
        if not 0 <= self.max_cer <= 1:
            out.append(f"--max-cer must be in [0, 1], got {self.max_cer:g}")
        if not 0 < self.validation_fraction < 1:
            out.append(f"validation_fraction must be in (0, 1), got {self.validation_fraction:g}")
        out += language_problems(self.lang, auto=False)
        return out
