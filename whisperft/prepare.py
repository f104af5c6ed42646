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
from multiprocessing import get_context
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


def _init_worker(model_path: str, n_mels: int, max_duration: float, max_text_tokens: int) -> None:
    import torch

    torch.set_num_threads(1)
    from whisperft.models import load_processor

    _W.update(
        tokenizer=load_processor(model_path).tokenizer,
        n_mels=n_mels,
        max_duration=max_duration,
        max_text_tokens=max_text_tokens,
    )


def _process(rows: list[Row]) -> list[tuple[str, Any]]:
    """Decode, featurize and tokenize a batch; each result is ("ok", Example) or (reason, detail)."""
    from whisperft.features import log_mel_batch

    results: list[tuple[str, Any] | None] = [None] * len(rows)
    waves: list[tuple[int, np.ndarray, list[int], str]] = []
    texts = [clean_text(r.text) for r in rows]
    todo = [i for i, r in enumerate(rows) if r.problem is None and texts[i]]
    for i, r in enumerate(rows):
        if r.problem is not None:
            results[i] = (r.problem, r.detail)
        elif not texts[i]:
            results[i] = ("empty_text", f"empty transcript {r.text!r}")
    tok = _W["tokenizer"]
    encoded = tok([" " + texts[i] for i in todo], add_special_tokens=False).input_ids if todo else []
    for i, ids in zip(todo, encoded, strict=True):
        if len(ids) > _W["max_text_tokens"]:
            results[i] = ("label_too_long", f"{len(ids)} tokens > {_W['max_text_tokens']} the decoder allows")
            continue
        try:
            audio = decode_audio(rows[i].audio, max_duration=_W["max_duration"])  # type: ignore[arg-type]
        except AudioError as exc:
            results[i] = (exc.reason, exc.detail)
            continue
        if is_silent(audio):
            results[i] = ("silent_audio", "no signal above -80 dBFS")
            continue
        waves.append((i, audio, ids, texts[i]))
    feats = log_mel_batch([w[1] for w in waves], _W["n_mels"])
    for (i, audio, ids, text), (frames, pad) in zip(waves, feats, strict=True):
        ex = Example(
            rows[i].id, text, frames.astype(np.float16), pad, np.asarray(ids, np.int32), len(audio) / SAMPLE_RATE
        )
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

        init = (model_path, n_mels, max_duration, max_text_tokens)
        if num_proc == 1:
            _init_worker(*init)
            for split, batch in tagged():
                consume(split, batch, _process(batch))
        else:
            ctx = get_context("spawn")
            with ctx.Pool(num_proc, initializer=_init_worker, initargs=init) as pool:
                pending: deque = deque()
                for split, batch in tagged():
                    pending.append((split, batch, pool.apply_async(_process, (batch,))))
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
