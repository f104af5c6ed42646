"""The files side of ``whisperft transcribe``, shared by both engines: finding audio, decoding it with
per-file errors, and writing one transcript file per input.

Nothing here imports torch or transformers, so the CTranslate2 path starts fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from whisperft.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, decode_audio
from whisperft.io import atomic_write_text
from whisperft.transcribe.decoding import DecodeOptions, Engine
from whisperft.transcribe.subtitles import Transcript, render


def collect_audio(inputs: list[str]) -> list[Path]:
    """Expand folders into their audio files (sorted); keep files as given."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES))
        else:
            out.append(p)
    return out


def decoded_groups(
    files: list[Path], group: int, errors: list[tuple[Path, str]]
) -> Iterator[list[tuple[Path, np.ndarray]]]:
    """Decode files to 16 kHz mono and yield them ``group`` at a time, so memory stays bounded for many
    files. A file that cannot be decoded goes to ``errors`` as (file, one-line reason); the others go on."""
    batch: list[tuple[Path, np.ndarray]] = []
    for f in files:
        try:
            batch.append((f, decode_audio(f)))
        except AudioError as exc:
            errors.append((f, exc.detail if exc.reason != "empty_audio" else f"{f}: no audio samples"))
            continue
        if len(batch) == group:
            yield batch
            batch = []
    if batch:
        yield batch


def transcribe_files(
    engine: Engine, files: list[Path], options: DecodeOptions
) -> tuple[list[Transcript], list[tuple[Path, str]]]:
    """Transcribe files together (their chunks share batches). Returns transcripts and per-file errors."""
    errors: list[tuple[Path, str]] = []
    done: dict[Path, Transcript] = {}
    for group in decoded_groups(files, max(1, options.batch_size * 4), errors):
        outs = engine.transcribe([a for _, a in group], options)
        for (f, audio), out in zip(group, outs, strict=True):
            done[f] = Transcript(str(f), out.language, round(len(audio) / SAMPLE_RATE, 3), out.text, out.segments)
    return [done[f] for f in files if f in done], errors


def write_transcripts(results: list[Transcript], fmt: str, output_dir: Path | None) -> list[tuple[str, Path]]:
    """Write ``<name>.<fmt>`` per transcript (beside the audio without ``output_dir``); same names get -2, -3..."""
    names: dict[str, int] = {}
    written = []
    for t in results:
        stem = Path(t.file).stem
        names[stem] = names.get(stem, 0) + 1
        if names[stem] > 1:
            stem = f"{stem}-{names[stem]}"
        target = (output_dir or Path(t.file).parent) / f"{stem}.{fmt}"
        atomic_write_text(target, render(t, fmt))
        written.append((t.file, target))
    return written
