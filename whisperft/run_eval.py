"""``whisperft eval``: a model on a feature store (or any source prepare accepts) -> metrics.json."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import torch

from whisperft.errors import UsageError
from whisperft.evaluate import EvalResult, evaluate_split, score, write_predictions
from whisperft.io import atomic_write_json
from whisperft.languages import get_language
from whisperft.store import FeatureStore

logger = logging.getLogger("whisperft")


def run_eval(
    model_spec: str,
    data: str,
    split: str | None = None,
    lang: str | None = None,
    batch_size: int = 16,
    num_beams: int = 1,
    max_samples: int | None = None,
    out: Path | None = None,
    trust_pickle: bool = False,
    progress: bool = True,
    max_new_tokens: int | None = None,
) -> EvalResult:
    """Evaluate ``model_spec`` on ``data`` and write metrics.json and predictions.jsonl."""
    from whisperft.models import check_language, context_frames, load_model, load_processor, resolve_model

    path = resolve_model(model_spec)
    cuda = torch.cuda.is_available()
    model = load_model(path, trust_pickle=trust_pickle, dtype=torch.float16 if cuda else None)
    if cuda:
        model.to("cuda")
    processor = load_processor(path)
    with tempfile.TemporaryDirectory(prefix="whisperft-eval-") as tmp:
        if FeatureStore.is_store(data):
            store = FeatureStore(data)
        else:
            if lang is None:
                raise UsageError(f"--data {data} is not a feature store, so --lang is needed to prepare it")
            from whisperft.prepare import prepare

            logger.info("preparing %s for evaluation", data)
            store = FeatureStore(prepare(data, lang, path, Path(tmp) / "store").out)
        language = lang or store.language or getattr(model.generation_config, "language", None)
        if language is None:
            raise UsageError("no language known for this data; pass --lang")
        language = get_language(language).code
        check_language(model, language)
        if split is None:
            split = "test" if "test" in store.splits else "validation"
            logger.info("evaluating on the %s split", split)
        sp = store.split(split)
        n = len(sp) if max_samples is None else min(max_samples, len(sp))
        t0 = time.perf_counter()
        bar = _bar(n, progress)
        hyps = evaluate_split(
            model,
            processor.tokenizer,
            sp,
            language,
            batch_size=batch_size,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            indices=range(n),
            n_frames=context_frames(model.config),
            progress=bar[1] if bar else None,
        )
        if bar:
            bar[0].stop()
        seconds = time.perf_counter() - t0
        durations = [float(sp.duration[i]) for i in range(n)]
        metrics, utts = score(sp.ids[:n], sp.texts[:n], [hyps[i] for i in range(n)], language, durations)
    result = EvalResult(
        **metrics,
        num_utterances=n,
        audio_seconds=round(sum(durations), 3),
        model=model_spec,
        language=language,
        headline="cer" if get_language(language).spaceless else "wer",
        seconds=round(seconds, 3),
        extra={"split": split, "num_beams": num_beams, "data": str(data)},
    )
    if out is not None:
        atomic_write_json(Path(out), result.to_dict())
        write_predictions(Path(out).with_name("predictions.jsonl"), utts)
    return result


def _bar(total: int, enabled: bool):  # type: ignore[no-untyped-def]
    import sys

    if not enabled or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    p = Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = p.add_task("eval", total=total)
    p.start()
    return p, (lambda k: p.advance(task, k))


def print_table(result: EvalResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.model} on {result.extra.get('split')} ({result.language})")
    for col in ("utterances", "audio (min)", "WER", "CER", "WER norm", "CER norm"):
        table.add_column(col, justify="right")
    table.add_row(
        str(result.num_utterances),
        f"{result.audio_seconds / 60:.1f}",
        f"{100 * result.wer:.2f}%",
        f"{100 * result.cer:.2f}%",
        f"{100 * result.wer_normalized:.2f}%",
        f"{100 * result.cer_normalized:.2f}%",
    )
    Console().print(table)
    if result.headline == "cer":
        Console().print("headline metric: CER (this language is written without spaces)")
