"""``whisperft prepare``: decode, resample, filter, featurize and tokenize into a feature store.

Rows are processed in batches by worker processes; the main process writes results in order,
streaming. Every skipped row is counted by reason, with a few examples, in prepare_report.json.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

from transformers import AutoConfig

from whisperft.data.align import AlignOptions
from whisperft.data.longform import find_recordings
from whisperft.data.sources import Row, Source, open_source
from whisperft.data.store import REPORT, SplitWriter, write_meta
from whisperft.data.tables import pseudo_label_info
from whisperft.errors import ConfigError, UsageError, WhisperftError
from whisperft.features import mel_filters
from whisperft.io import atomic_write_json, check_free_space, mark_complete, staged_dir
from whisperft.languages import Language, get_language
from whisperft.models.registry import load_processor, resolve_model
from whisperft.models.whisper import decoder_prefix, is_multilingual
from whisperft.prepare.filters import EVAL_SPLITS, RateBounds, SeenRows, split_order
from whisperft.prepare.longform import SUMMARY, LongformSource
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.workers import batches, init_worker, process, tokenize

logger = logging.getLogger("whisperft")

BATCH = 16  # rows per worker task
EXAMPLES_PER_REASON = 3
MIN_FREE_BYTES = 200 * 1024 * 1024


@dataclass
class SplitReport:
    """What became of one split's rows. Every row read is kept or skipped for one reason:
    ``read == kept + sum(skipped.values())``."""

    read: int = 0
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
            "read": self.read,
            "kept": self.kept,
            "skipped": dict(sorted(self.skipped.items())),
            "hours": round(self.seconds / 3600, 4),
            "examples": self.examples,
        }


@dataclass
class PrepareResult:
    """The store, its report (per split), and for long recordings the alignment's summary (``SUMMARY``)."""

    out: Path
    report: dict[str, Any]
    alignment: dict[str, Any] | None = None


@dataclass
class Target:
    """What the model asks of the data: its tokenizer, mel bins, label budget and decoder prompt."""

    tokenizer: Any
    n_mels: int
    max_target_positions: int
    max_text_tokens: int


def model_target(model: str, lang: Language) -> Target:
    model_path = resolve_model(model)
    tokenizer = load_processor(model_path).tokenizer
    mcfg = AutoConfig.from_pretrained(model_path)
    if not is_multilingual(mcfg) and lang.code != "en":
        raise UsageError(f"model {model} is English-only (*.en); it cannot be prepared for {lang.name}")
    # every language token is one token long: a language Whisper lacks counts as any other
    prefix = decoder_prefix(tokenizer, mcfg, lang.code if lang.whisper else "en", "transcribe")
    # label = prefix + text + <|endoftext|>, and the decoder sees <|startoftranscript|> + label[:-1]
    max_text_tokens = int(mcfg.max_target_positions) - len(prefix) - 1
    return Target(tokenizer, int(mcfg.num_mel_bins), int(mcfg.max_target_positions), max_text_tokens)


class StoreBuilder:
    """The split writers and reports of a store being built. Without a validation split in the
    source, every k-th kept training row becomes validation (deterministic)."""

    def __init__(self, folder: Path, n_mels: int, make_validation: bool, every: int) -> None:
        self.folder, self.n_mels = folder, n_mels
        self.make_validation, self.every = make_validation, every
        self.writers: dict[str, SplitWriter] = {}
        self.reports: dict[str, SplitReport] = {}
        self.train_rows = 0

    def open(self, split: str) -> None:
        for name in (split, "validation") if self.make_validation and split == "train" else (split,):
            if name not in self.writers:
                self.writers[name] = SplitWriter(self.folder / name, self.n_mels)
                self.reports.setdefault(name, SplitReport())

    def _route(self, split: str) -> str:
        if self.make_validation and split == "train":
            self.train_rows += 1
            if (self.train_rows - 1) % self.every == 0:
                return "validation"
        return split

    def consume(self, split: str, batch: list[Row], results: list[tuple[str, Any]]) -> None:
        """Write the kept rows and count every row: each is read into the split it is kept in, or into
        the source's split when skipped."""
        for row, (status, payload) in zip(batch, results, strict=True):
            name = self._route(split) if status == "ok" else split
            report = self.reports[name]
            report.read += 1
            if status == "ok":
                self.writers[name].add(payload)
                report.kept += 1
                report.seconds += payload.duration
            else:
                report.skip(status, row.origin, str(payload))

    def close(self) -> dict[str, Any]:
        for w in self.writers.values():
            w.close()
        return {name: rep.to_dict() for name, rep in self.reports.items()}


def prepare(request: PrepareRequest, progress: Callable[[int], None] | None = None) -> PrepareResult:
    """Build a feature store from ``request.source``. Returns the store path and its report; ``progress``
    is called with each batch's number of rows.

    A source of long recordings with their text (``data.longform``) is cut into clips first, aligned by
    ``request.align_model`` (``prepare.longform``). Raises ConfigError listing every problem of the
    request, UsageError for a source that cannot be read, WhisperftError when no row of a split is kept."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    lang = get_language(request.lang)
    source, model, max_duration, audio = request.source, request.model, request.max_duration, request.audio
    bounds = RateBounds(request.min_chars_per_second, request.max_chars_per_second)
    out = Path(request.out) if request.out is not None else Path("data") / lang.code
    recordings = find_recordings(source)
    longform = None
    if recordings:
        options = AlignOptions(request.max_cer, max_duration, language=lang.code)
        longform = LongformSource(recordings, lang, request.align_model, options)
        src = longform.source(str(source))
    else:
        src = open_source(source, lang)
    target = model_target(model, lang)
    if not src.splits:
        raise UsageError(f"{src.description}: no splits found (expected train/dev/test tables)")
    check_free_space(out.parent if out.parent.exists() else Path.cwd(), MIN_FREE_BYTES, "the feature store")
    num_proc = max(1, request.num_proc if request.num_proc is not None else (os.cpu_count() or 1))
    make_validation = "validation" not in src.splits and "train" in src.splits
    seen = SeenRows()
    with staged_dir(out) as tmp:
        builder = StoreBuilder(tmp, target.n_mels, make_validation, max(2, round(1 / request.validation_fraction)))
        init = (target.n_mels, max_duration, bounds, mel_filters(target.n_mels).numpy(), audio)
        for split, batch, results in _run(_tagged(src, builder, seen), target, init, num_proc):
            builder.consume(split, batch, results)
            if progress is not None:
                progress(len(batch))
        report = builder.close()
        meta = {
            "n_mels": target.n_mels,
            "language": lang.code,
            "model": model,
            "vocab_size": len(target.tokenizer),
            "max_target_positions": target.max_target_positions,
            "max_duration": max_duration,
            "source": src.description,
            "splits": list(builder.writers),
            "audio": audio,
        }
        labels = pseudo_label_info(source)
        if labels is not None:  # a whisperft label manifest: its teacher and filter, and the hours kept here
            meta["pseudo_labels"] = {**labels, "hours": round(sum(r["hours"] for r in report.values()), 4)}
        write_meta(tmp, meta)
        atomic_write_json(tmp / REPORT, report)
        summary = longform.summary.to_dict(sum(r["hours"] for r in report.values())) if longform else None
        if summary is not None:
            atomic_write_json(tmp / SUMMARY, summary)
        mark_complete(tmp)
    for split, n in seen.leaked.items():
        logger.warning(
            "%d %s rows are also in an evaluation split: dropped from %s (leaked_into_eval)", n, split, split
        )
    _check_kept(report, list(src.splits), out / REPORT)
    return PrepareResult(out, report, summary)


def _check_kept(report: dict[str, Any], listed: list[str], report_path: Path) -> None:
    """Raise WhisperftError (exit 1) when no row of train, or of an evaluation split the source lists,
    was kept. Rows of train that became validation count as kept. The store is written all the same,
    so that its report can be read."""
    for split in split_order(listed):
        rep = report.get(split)
        if split not in ("train", *EVAL_SPLITS) or rep is None:
            continue
        derived = split == "train" and "validation" not in listed
        if rep["kept"] + (report.get("validation", {}).get("kept", 0) if derived else 0) > 0:
            continue
        if not rep["skipped"]:
            raise WhisperftError(f"prepare kept no row of {split}: the source lists none; see {report_path}")
        reason, n = max(rep["skipped"].items(), key=lambda kv: kv[1])
        example = rep["examples"][reason][0]
        raise WhisperftError(
            f"prepare kept no row of {split} ({rep['read']} read): most were {reason} ({n}), "
            f"e.g. {example['row']}: {example['detail']}; see {report_path}"
        )


def _tagged(src: Source, builder: StoreBuilder, seen: SeenRows) -> Iterator[tuple[str, list[Row]]]:
    """Batches of rows with their split, evaluation splits first; repeats and leaks marked."""
    for split in split_order(list(src.splits)):
        builder.open(split)
        for batch in batches(src.splits[split](), BATCH):
            for r in batch:
                seen.check(split, r)
            yield split, batch


def _run(
    tagged: Iterator[tuple[str, list[Row]]], target: Target, init: tuple, num_proc: int
) -> Iterator[tuple[str, list[Row], list[tuple[str, Any]]]]:
    """Process batches in order: in this process, or in a pool with a bounded queue of pending batches."""
    if num_proc == 1:
        init_worker(*init, worker=False)
        for split, batch in tagged:
            yield split, batch, process(batch, tokenize(batch, target.tokenizer, target.max_text_tokens))
        return
    # forkserver: workers fork from a clean server that has already imported torch and
    # transformers, so they start fast without inheriting this process's threads
    if "forkserver" in get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(["whisperft.prepare.workers", "torch", "transformers"])
    else:
        ctx = get_context("spawn")
    with ctx.Pool(num_proc, initializer=init_worker, initargs=init) as pool:
        pending: deque = deque()
        for split, batch in tagged:
            ids = tokenize(batch, target.tokenizer, target.max_text_tokens)
            pending.append((split, batch, pool.apply_async(process, (batch, ids))))
            while len(pending) > 2 * num_proc:
                s, b, res = pending.popleft()
                yield s, b, res.get()
        while pending:
            s, b, res = pending.popleft()
            yield s, b, res.get()
