"""The per-batch work of prepare: tokenize in the parent; decode, filter and featurize in workers.

Workers run one torch thread each, so the cores are not oversubscribed. Each result is
("ok", Example) or (reason, detail) for a row that is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio, is_silent
from whisperft.data.sources import Row
from whisperft.data.store import Example, encode_audio
from whisperft.features import log_mel_batch, set_mel_filters
from whisperft.prepare.filters import RateBounds
from whisperft.text import clean_text, transcript_note

_W: dict[str, Any] = {}  # this process's settings, set by init_worker


def init_worker(
    n_mels: int,
    max_duration: float,
    bounds: RateBounds,
    filters: Any = None,
    audio: str | None = None,
    worker: bool = True,
) -> None:
    """Worker set-up: one torch thread, the filters' settings, the mel filter bank handed over by the
    parent, and the format of the store's audio track (None: frames only)."""
    if worker:
        torch.set_num_threads(1)
    if filters is not None:
        set_mel_filters(filters)
    _W.update(n_mels=n_mels, max_duration=max_duration, bounds=bounds, audio=audio)


def tokenize(rows: list[Row], tokenizer: Any, max_text_tokens: int) -> list[list[int]]:
    """Clean and tokenize transcripts in the parent (fast, batched); mark empty, annotated and too-long labels."""
    texts = [clean_text(r.text) for r in rows]
    notes = [transcript_note(t) for t in texts]
    todo = [i for i, r in enumerate(rows) if r.problem is None and texts[i] and notes[i] is None]
    ids: list[list[int]] = [[] for _ in rows]
    encoded = tokenizer([" " + texts[i] for i in todo], add_special_tokens=False).input_ids if todo else []
    for i, seq in zip(todo, encoded, strict=True):
        ids[i] = seq
    for i, r in enumerate(rows):
        if r.problem is not None:
            continue
        r.text = texts[i]
        if not texts[i]:
            r.problem, r.detail = "empty_text", "empty transcript after cleaning"
        elif notes[i] is not None:
            r.problem, r.detail = "annotated_text", f"the transcript holds the note {notes[i]!r}, not only spoken words"
        elif len(ids[i]) > max_text_tokens:
            r.problem, r.detail = "label_too_long", f"{len(ids[i])} tokens > {max_text_tokens} the decoder allows"
    return ids


def _decode(row: Row) -> tuple[str, Any]:
    """("ok", audio) or (reason, detail): undecodable, too long, silent, or an implausible speaking rate."""
    try:
        audio = decode_audio(row.audio, max_duration=_W["max_duration"])  # type: ignore[arg-type]
    except AudioError as exc:
        return exc.reason, exc.detail
    if is_silent(audio):
        return "silent_audio", "no signal above -80 dBFS"
    problem = _W["bounds"].problem(str(row.text), len(audio) / SAMPLE_RATE)
    if problem:
        return "implausible_rate", problem
    return "ok", audio


def process(rows: list[Row], ids: list[list[int]]) -> list[tuple[str, Any]]:
    """Decode and featurize a batch; each result is ("ok", Example) or (reason, detail)."""
    results: list[tuple[str, Any]] = []
    waves: list[tuple[int, np.ndarray]] = []
    for i, r in enumerate(rows):
        status, payload = (r.problem, r.detail) if r.problem is not None else _decode(r)
        results.append((status, payload))
        if status == "ok":
            waves.append((i, payload))
    feats = log_mel_batch([w[1] for w in waves], _W["n_mels"])
    for (i, audio), (frames, pad) in zip(waves, feats, strict=True):
        r = rows[i]
        encoded = encode_audio(audio, _W["audio"]) if _W.get("audio") else b""
        ex = Example(
            r.id,
            str(r.text),
            frames.astype(np.float16),
            pad,
            np.asarray(ids[i], np.int32),
            len(audio) / SAMPLE_RATE,
            encoded,
        )
        results[i] = ("ok", ex)
    return results


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for r in rows:
        batch.append(r)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
