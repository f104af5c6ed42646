"""``whisperft prepare``: decode, resample, filter, featurize and tokenize into a feature store.

Rows are processed in batches by worker processes (one torch thread each, so the
cores are not oversubscribed); the main process writes results in order, streaming.
Every skipped row is counted by reason, with a few examples, in prepare_report.json.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio, is_silent
from whisperft.data import Row, open_source
from whisperft.errors import UsageError
from whisperft.io import atomic_write_json, check_free_space, mark_complete, staged_dir
from whisperft.languages import get_language
from whisperft.store import REPORT, Example, SplitWriter, write_meta

logger = logging.getLogger("whisperft")

BATCH = 16
EXAMPLES_PER_REASON = 3
MIN_FREE_BYTES = 200 * 1024 * 1024
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\ufeff]")


def clean_text(text: Any) -> str:
    """Normalize a transcript: NFC, no control characters, single spaces."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


@dataclass
class SplitReport:
    kept: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def skip(self, reason: str, origin: str, detail: str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < EXAMPLES_PER_REASON:
            ex.append({"row": origin, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "skipped": dict(sorted(self.skipped.items())),
            "hours": round(self.seconds / 3600, 4),
            "examples": self.examples,
        }


@dataclass
class PrepareResult:
    out: Path
    report: dict[str, Any]


# ----------------------------------------------------------------------------- workers

_W: dict[str, Any] = {}


def _init_worker(n_mels: int, max_duration: float, filters: Any = None, worker: bool = True) -> None:
    """Worker set-up: one torch thread, and the mel filter bank handed over by the parent."""
    import torch

    if worker:
        torch.set_num_threads(1)
    if filters is not None:
        from whisperft.features import set_mel_filters

        set_mel_filters(filters)
    _W.update(n_mels=n_mels, max_duration=max_duration)


def _tokenize(rows: list[Row], tokenizer: Any, max_text_tokens: int) -> list[list[int]]:
    """Clean and tokenize transcripts in the parent (fast, batched); mark empty and too-long labels."""
    texts = [clean_text(r.text) for r in rows]
    todo = [i for i, r in enumerate(rows) if r.problem is None and texts[i]]
    ids: list[list[int]] = [[] for _ in rows]
    encoded = tokenizer([" " + texts[i] for i in todo], add_special_tokens=False).input_ids if todo else []
    for i, seq in zip(todo, encoded, strict=True):
        ids[i] = seq
    for i, r in enumerate(rows):
        r.text = texts[i] if r.problem is None else r.text
        if r.problem is not None:
            continue
        if not texts[i]:
            r.problem, r.detail = "empty_text", "empty transcript after cleaning"
        elif len(ids[i]) > max_text_tokens:
            r.problem, r.detail = "label_too_long", f"{len(ids[i])} tokens > {max_text_tokens} the decoder allows"
    return ids


def _process(rows: list[Row], ids: list[list[int]]) -> list[tuple[str, Any]]:
    """Decode and featurize a batch; each result is ("ok", Example) or (reason, detail)."""
    from whisperft.features import log_mel_batch

    results: list[tuple[str, Any] | None] = [None] * len(rows)
    waves: list[tuple[int, np.ndarray]] = []
    for i, r in enumerate(rows):
        if r.problem is not None:
            results[i] = (r.problem, r.detail)
            continue
        try:
            audio = decode_audio(r.audio, max_duration=_W["max_duration"])  # type: ignore[arg-type]
        except AudioError as exc:
            results[i] = (exc.reason, exc.detail)
            continue
        if is_silent(audio):
            results[i] = ("silent_audio", "no signal above -80 dBFS")
            continue
        waves.append((i, audio))
    feats = log_mel_batch([w[1] for w in waves], _W["n_mels"])
    for (i, audio), (frames, pad) in zip(waves, feats, strict=True):
        r = rows[i]
        ex = Example(r.id, str(r.text), frames.astype(np.float16), pad, np.asarray(ids[i], np.int32),
                     len(audio) / SAMPLE_RATE)  # fmt: skip
        results[i] = ("ok", ex)
    return [r for r in results if r is not None]


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for r in rows:
        batch.append(r)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ----------------------------------------------------------------------------- driver


def prepare(
    source: str | None,
    language: str,
    model: str,
    out: str | Path,
    max_duration: float = 30.0,
    num_proc: int | None = None,
    validation_fraction: float = 0.1,
    progress: Any = None,
) -> PrepareResult:
    """Build a feature store at ``out`` from ``source``. Returns the store path and its report."""
    from transformers import AutoConfig

    from whisperft.models import decoder_prefix, is_multilingual, load_processor, resolve_model

    if not (0 < max_duration <= 30):
        raise UsageError(f"--max-duration must be in (0, 30] seconds, got {max_duration}")
    lang = get_language(language)
    out = Path(out)
    src = open_source(source, lang)
    model_path = resolve_model(model)
    processor = load_processor(model_path)
    mcfg = AutoConfig.from_pretrained(model_path)
    if not is_multilingual(mcfg) and lang.code != "en":
        raise UsageError(f"model {model} is English-only (*.en); it cannot be prepared for {lang.name}")
    prefix = decoder_prefix(processor.tokenizer, mcfg, lang.code, "transcribe")
    # label = prefix + text + <|endoftext|>, and the decoder sees <|startoftranscript|> + label[:-1]
    max_text_tokens = int(mcfg.max_target_positions) - len(prefix) - 1
    n_mels = int(mcfg.num_mel_bins)
    if not src.splits:
        raise UsageError(f"{src.description}: no splits found (expected train/dev/test tables)")
    check_free_space(out.parent if out.parent.exists() else Path.cwd(), MIN_FREE_BYTES, "the feature store")
    num_proc = max(1, num_proc if num_proc is not None else (os.cpu_count() or 1))
    make_validation = "validation" not in src.splits and "train" in src.splits
    reports: dict[str, SplitReport] = {}
    seen: set[tuple[str, str]] = set()

    with staged_dir(out) as tmp:
        writers: dict[str, SplitWriter] = {}

        def writer(name: str) -> SplitWriter:
            if name not in writers:
                writers[name] = SplitWriter(tmp / name, n_mels)
                reports.setdefault(name, SplitReport())
            return writers[name]

        every = max(2, round(1 / validation_fraction))
        counter = Counter()

        def route(split: str, row: Row) -> str:
            # without a validation split, every k-th training row becomes validation (deterministic)
            if make_validation and split == "train":
                counter[split] += 1
                if (counter[split] - 1) % every == 0:
                    return "validation"
            return split

        def tagged() -> Iterator[tuple[str, list[Row]]]:
            for split, rows in src.splits.items():
                writer(split)
                if make_validation and split == "train":
                    writer("validation")
                for batch in _batches(rows(), BATCH):
                    for r in batch:
                        key = (r.audio if isinstance(r.audio, str) else r.id, clean_text(r.text))
                        if r.problem is None and key in seen:
                            r.problem, r.detail = "duplicate", f"same audio and text as an earlier row ({r.id})"
                        seen.add(key)
                    yield split, batch

        def consume(split: str, batch: list[Row], results: list[tuple[str, Any]]) -> None:
            for row, (status, payload) in zip(batch, results, strict=True):
                if status == "ok":
                    name = route(split, row)
                    writer(name).add(payload)
                    reports[name].kept += 1
                    reports[name].seconds += payload.duration
                else:
                    reports[split].skip(status, row.origin, str(payload))
                if progress is not None:
                    progress(1)

        from whisperft.features import mel_filters

        init = (n_mels, max_duration, mel_filters(n_mels).numpy())
        if num_proc == 1:
            _init_worker(*init, worker=False)
            for split, batch in tagged():
                consume(split, batch, _process(batch, _tokenize(batch, processor.tokenizer, max_text_tokens)))
        else:
            # forkserver: workers fork from a clean server that has already imported torch and
            # transformers, so they start fast without inheriting this process's threads
            if "forkserver" in get_all_start_methods():
                ctx = get_context("forkserver")
                ctx.set_forkserver_preload(["whisperft.prepare", "whisperft.features", "torch", "transformers"])
            else:
                ctx = get_context("spawn")
            with ctx.Pool(num_proc, initializer=_init_worker, initargs=init) as pool:
                pending: deque = deque()
                for split, batch in tagged():
                    ids = _tokenize(batch, processor.tokenizer, max_text_tokens)
                    pending.append((split, batch, pool.apply_async(_process, (batch, ids))))
                    while len(pending) > 2 * num_proc:
                        s, b, res = pending.popleft()
                        consume(s, b, res.get())
                while pending:
                    s, b, res = pending.popleft()
                    consume(s, b, res.get())
        for w in writers.values():
            w.close()
        report = {name: rep.to_dict() for name, rep in reports.items()}
        write_meta(
            tmp,
            {
                "n_mels": n_mels,
                "language": lang.code,
                "model": model,
                "vocab_size": len(processor.tokenizer),
                "max_target_positions": int(mcfg.max_target_positions),
                "max_duration": max_duration,
                "source": src.description,
                "splits": list(writers),
            },
        )
        atomic_write_json(tmp / REPORT, report)
        mark_complete(tmp)
    if sum(r["kept"] for r in report.values()) == 0:
        logger.warning("no usable rows were kept; see %s", out / REPORT)
    return PrepareResult(out, report)
