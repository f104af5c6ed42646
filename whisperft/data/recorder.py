"""Record a dataset: append clips and their transcripts to a Common Voice style folder.

The folder is what ``prepare --source FOLDER`` reads: ``clips/`` plus ``train.tsv``, ``dev.tsv`` and
``test.tsv`` with ``path`` and ``sentence`` columns. Clips are 16 kHz mono FLAC (lossless, about half
of WAV). Every write is atomic and the tables are rewritten under a lock, so a crash or a second
writer never loses a clip that was already recorded.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from whisperft.audio import SAMPLE_RATE
from whisperft.data.tables import read_table
from whisperft.errors import UsageError
from whisperft.io import atomic_write_text, waiting_lock

SPLIT_FILES = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
COLUMNS = ("path", "sentence")
_FIELD_BREAKS = re.compile(r"[\t\r\n]")


@dataclass
class SplitCount:
    clips: int
    seconds: float


def clean_sentence(text: str) -> str:
    """One line of text: tabs and newlines become spaces, runs of spaces collapse."""
    return " ".join(str(text).split())


def _read_table(table: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a split's table, read as Common Voice writes it (no quoting); a release's own
    columns are kept."""
    if not table.is_file():
        return list(COLUMNS), []
    columns, records = read_table(table, quoted=False)
    rows = [{k: v or "" for k, v in rec.items()} for _, rec in records]
    return columns + [c for c in COLUMNS if c not in columns], rows


def _read_rows(table: Path) -> list[dict[str, str]]:
    return _read_table(table)[1]


def _render(columns: list[str], rows: list[dict[str, str]]) -> str:
    """A Common Voice TSV: one line per row, fields as written, no quoting; a tab or line break inside a
    field (none in a release, none in text that ``clean_sentence`` cleaned) becomes a space."""
    lines = ["\t".join(columns)]
    lines += ["\t".join(_FIELD_BREAKS.sub(" ", r.get(c) or "") for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_clip(clips: Path, audio: np.ndarray) -> Path:
    """A new clip file with a name no other clip has, written through a temp file and a rename."""
    clips.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=clips, prefix=".rec-", suffix=".flac")
    os.close(fd)
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        _fsync(Path(tmp))  # on disk before any table names it
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 10_000):
            target = clips / f"rec-{stamp}-{n:03d}.flac"
            if not target.exists():
                os.replace(tmp, target)
                _fsync(clips)  # and the rename with it
                return target
        raise UsageError(f"{clips}: too many clips recorded in one second")
    finally:
        Path(tmp).unlink(missing_ok=True)


def add_recording(folder: Path, audio: np.ndarray, sentence: str, split: str = "train") -> Path:
    """Append one 16 kHz clip and its transcript to ``split``; returns the clip's path."""
    if split not in SPLIT_FILES:
        raise UsageError(f"split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
    text = clean_sentence(sentence)
    if not text:
        raise UsageError("type the transcript of the clip first")
    folder = Path(folder)
    with waiting_lock(folder / ".lock"):
        clip = _write_clip(folder / "clips", audio)
        table = folder / SPLIT_FILES[split]
        columns, rows = _read_table(table)
        rows.append({"path": clip.name, "sentence": text})
        atomic_write_text(table, _render(columns, rows))
    return clip


def dataset_counts(folder: Path) -> dict[str, SplitCount]:
    """Clips and seconds per split, for the clips that are on disk."""
    out = {}
    for split, fname in SPLIT_FILES.items():
        rows = _read_rows(Path(folder) / fname)
        seconds = 0.0
        n = 0
        for r in rows:
            clip = Path(folder) / "clips" / r.get("path", "")
            if clip.is_file():
                n += 1
                seconds += sf.info(str(clip)).duration
        if rows:
            out[split] = SplitCount(n, round(seconds, 1))
    return out
