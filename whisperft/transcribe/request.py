"""What ``whisperft transcribe`` takes and returns. Light to import (no numpy, no torch): the command line
reads its defaults from here when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.transcribe.subtitles import FORMATS, Transcript

BATCH_SIZE = 8  # windows decoded together: a CPU gains little past 8, a GPU's memory holds 8 of any size
TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class TranscribeRequest:
    """Everything ``whisperft transcribe`` takes. These defaults are the only copy: the CLI reads them.

    ``audio``: files or folders (searched for ``audio.AUDIO_SUFFIXES``); ``model``: a spec, run, folder or
    CTranslate2 folder (None: the newest finished run under ./runs); ``lang``: None for the model's own (detected
    when it has none), ``auto`` to detect, or a language; ``output_dir``: where ``<name>.<format>`` files go (None:
    beside the audio, or printed for txt); ``timestamps``: None for on with srt, vtt and json, off with txt;
    ``compute_type``: CTranslate2's (``default``: as exported).
    """

    audio: tuple[str, ...]
    model: str | None
    lang: str | None = None
    format: str = "txt"
    output_dir: Path | None = None
    batch_size: int = BATCH_SIZE
    num_beams: int | None = None
    task: str = "transcribe"
    timestamps: bool | None = None
    trust_pickle: bool = False
    compute_type: str = "default"
    quiet: bool = True  # transformers' info logs and progress bars off

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        if self.format not in FORMATS:
            out.append(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.task not in TASKS:
            out.append(f"--task must be {' or '.join(TASKS)}, got {self.task!r}")
        if self.batch_size < 1 or (self.num_beams is not None and self.num_beams < 1):
            out.append("--batch-size and --num-beams take a number of 1 or more")
        out += language_problems(self.lang)
        return out

    @property
    def timestamped(self) -> bool:
        """Whether segments are timestamped inside each chunk: ``timestamps``, else by ``format``."""
        return self.format != "txt" if self.timestamps is None else self.timestamps


@dataclass
class TranscribeResult:
    """What a transcription made: one ``Transcript`` per readable file, in input order; (file, reason)
    per file that could not be decoded; and (audio, written file) per file written (none when a txt
    transcript goes to the screen, that is ``format`` txt without ``output_dir``)."""

    transcripts: list[Transcript]
    errors: list[tuple[Path, str]] = field(default_factory=list)
    written: list[tuple[str, Path]] = field(default_factory=list)
    files: int = 0
