"""Claim: packing (data.pack: true) trains >=4x the utterance-audio-seconds per second of the padded
recipe (one clip per 30 s window), and reaches equal or better dev WER in the same wall-clock time."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from benchmarks.common import DATA, cv_corpus, emit, setup

BATCH, LR, WARMUP = 4, 2e-5, 5
THROUGHPUT_STEPS = 6  # per repeat; the first step is not counted
WER_STEPS_PADDED = 40  # the padded run's length; the packed run gets the same wall-clock time


def run(store: str, model: str, out: Path, pack: bool, steps: int, skip_first: bool = False) -> float:
    """Train ``steps`` steps; returns the wall time of the training loop alone (from the step log)."""
    from whisperft.config import config_from_dict
    from whisperft.train.loop import train

    shutil.rmtree(out, ignore_errors=True)
    cfg = config_from_dict(
        {
            "model": model,
            "language": "sv",
            "data": {"store": store, "eval_split": None, "num_workers": 1, "pack": pack},
            "train": {"output_dir": str(out), "max_steps": steps, "batch_size": BATCH, "learning_rate": LR,
                      "warmup_steps": WARMUP, "logging_steps": 1, "save_steps": 10_000, "eval_steps": 10_000},
        }
    )  # fmt: skip
    train(cfg, progress=None)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return sum(1 / r["steps_per_s"] for r in log if "steps_per_s" in r and r["step"] > int(skip_first))


def clips_per_example(store: str, model: str, pack: bool) -> tuple[float, float]:
    """(clips, utterance-audio-seconds) per training example, as train() builds them."""
    from transformers import AutoConfig

    from whisperft.data.batches import fitting_rows
    from whisperft.data.packing import PackedDataset
    from whisperft.data.store import FeatureStore
    from whisperft.models.registry import load_processor
    from whisperft.models.whisper import decoder_prefix

    split = FeatureStore(store).split("train")
    rows = fitting_rows(split, 3000)
    if not pack:
        return 1.0, float(split.duration[rows].mean())
    tok = load_processor(model).tokenizer
    prefix = decoder_prefix(tok, AutoConfig.from_pretrained(model), "sv", "transcribe")
    nots = prefix[-1]
    ds = PackedDataset(split, rows, prefix, nots, nots + 1, tok.eos_token_id, 3000, 448, 0.5, seed=42)
    return ds.plan.clips_per_window, float(split.duration[rows].sum()) / len(ds)


def seconds_per_step(store: str, model: str, pack: bool) -> float:
    """Best wall seconds per optimizer step over 3 repeats; each repeat's first step (warm-up) is left out."""
    best = float("inf")
    for _ in range(3):
        total = run(store, model, DATA / "pack-bench-throughput", pack, THROUGHPUT_STEPS, skip_first=True)
        best = min(best, total / (THROUGHPUT_STEPS - 1))
    return best


def main() -> None:
    setup()
    from whisperft.evaluate.request import EvalRequest
    from whisperft.evaluate.run import run_eval
    from whisperft.models.registry import resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    model = resolve_model("bundled:base")
    store = DATA / "store-pack-bench"
    if not (store / "store.json").is_file():
        prepare(PrepareRequest(str(cv_corpus()), "sv", model, store, num_proc=2))
    _, utt_pad = clips_per_example(str(store), model, pack=False)
    per_window, utt_pack = clips_per_example(str(store), model, pack=True)
    step_pad = seconds_per_step(str(store), model, pack=False)
    step_pack = seconds_per_step(str(store), model, pack=True)
    rate_pad, rate_pack = utt_pad * BATCH / step_pad, utt_pack * BATCH / step_pack

    # equal wall-clock: the packed run gets as many steps as fit in the padded run's time
    steps_pack = max(1, round(WER_STEPS_PADDED * step_pad / step_pack))
    results = {}
    for name, pack, steps in (("padded", False, WER_STEPS_PADDED), ("packed", True, steps_pack)):
        out = DATA / f"pack-bench-{name}"
        t0 = time.perf_counter()
        loop = run(str(store), model, out, pack, steps)
        wall = time.perf_counter() - t0
        res = run_eval(
            EvalRequest(str(out / "final"), str(store), split="validation", lang="sv", batch_size=8, out=None)
        )
        results[name] = (steps, loop, wall, res.wer)
    emit(
        "packing_throughput",
        ours_utt_audio_s_per_s=round(rate_pack, 2),
        padded_utt_audio_s_per_s=round(rate_pad, 2),
        ratio=round(rate_pack / rate_pad, 2),
        target=">= 4x, dev WER equal or better at equal wall-clock",
        dev_wer_packed=round(results["packed"][3], 4),
        dev_wer_padded=round(results["padded"][3], 4),
        steps_packed=results["packed"][0],
        steps_padded=results["padded"][0],
        train_loop_s_packed=round(results["packed"][1], 1),
        train_loop_s_padded=round(results["padded"][1], 1),
        clips_per_window=round(per_window, 2),
        s_per_step_packed=round(step_pack, 2),
        s_per_step_padded=round(step_pad, 2),
        model="bundled:base",
        batch=BATCH,
        window_s=30,
    )


if __name__ == "__main__":
    main()
