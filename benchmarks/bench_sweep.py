"""Claim: ``whisperft sweep`` on Ray Tune adds little per trial over the sequential runner it replaced (#24).

The reference is that runner, as it was: one ``whisperft train`` process per point, one after another. Both
train the same 4 points of the tiny model (8 steps, an evaluation at 4 and 8) one trial at a time, ASHA
off, so the difference is the engine: Ray's start, its worker processes, reporting and bookkeeping.
Overhead per trial = (wall time - the time spent inside ``train()``, from each run's metrics.json) / trials.
Ray starts once per sweep and reuses a finished trial's worker for the next (no new process, no new imports).
A third run shows 2 trials at a time with ASHA on: on this 2-core machine two trials share the cores.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

from benchmarks.common import DATA, cli, cv_corpus, emit, setup

POINTS = ("1e-4", "3e-4", "1e-3", "3e-3")
STEPS, EVAL_EVERY = 8, 4


def config(root: Path) -> Path:
    """The tiny model (random weights, real tokenizer) on 40 espeak-ng Swedish clips, prepared once."""
    from devkit.tiny import make_tiny_model

    model = root / "tiny"
    if not (model / "config.json").is_file():
        make_tiny_model(model)
    store = root / "store"
    if not store.is_dir():
        cli("prepare", "--lang", "sv", "--source", str(cv_corpus("cv-sv-40", n=40)), "--model", str(model),
            "--out", str(store))  # fmt: skip
    path = root / "sweep.yaml"
    path.write_text(
        f"model: {{name: {model}, audio_context_s: 4.0}}\nlanguage: sv\n"
        f"data: {{store: {store}, num_workers: 0, max_eval_samples: 8}}\n"
        f"train: {{output_dir: {root / 'run'}, batch_size: 4, warmup_steps: 2, max_steps: {STEPS}, "
        f"eval_steps: {EVAL_EVERY}, save_steps: {EVAL_EVERY}, logging_steps: 1}}\n"
        "eval: {max_new_tokens: 8, num_beams: 1, before_training: false}\n"
    )
    return path


def inside_train(folders: list[Path]) -> float:
    return sum(json.loads((f / "final" / "metrics.json").read_text())["train_seconds"] for f in folders)


def sequential(cfg: Path, out: Path) -> tuple[float, float]:
    """The removed runner: ``whisperft train CONFIG key=value train.output_dir=POINT`` for each point, in turn."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    for lr in POINTS:
        cli("train", str(cfg), f"train.learning_rate={lr}", f"train.output_dir={out / lr}", "--no-progress")
    wall = time.perf_counter() - t0
    return wall, inside_train([out / lr for lr in POINTS])


def on_ray(cfg: Path, out: Path, concurrent: int, asha: bool) -> tuple[float, float, int]:
    """``whisperft sweep`` over the same points: (wall, seconds inside train() of finished trials, stopped)."""
    shutil.rmtree(out, ignore_errors=True)
    wall, _ = cli("sweep", str(cfg), "train.learning_rate=" + ",".join(POINTS), "--concurrent", str(concurrent),
                  "--asha" if asha else "--no-asha", "--out", str(out))  # fmt: skip
    rows = list(csv.DictReader((out / "sweep.csv").read_text().splitlines()))
    done = [Path(r["run"]) for r in rows if r["status"].startswith("done")]
    return wall, inside_train(done), len(rows) - len(done)


def main() -> None:
    setup()
    root = DATA / "sweep"
    root.mkdir(parents=True, exist_ok=True)
    cfg = config(root)
    seq_wall, seq_train = sequential(cfg, root / "sequential")
    ray_wall, ray_train, _ = on_ray(cfg, root / "ray-1", 1, asha=False)
    par_wall, _, stopped = on_ray(cfg, root / "ray-2", 2, asha=True)
    n = len(POINTS)
    ours, ref = (ray_wall - ray_train) / n, (seq_wall - seq_train) / n
    emit(
        "sweep_overhead_per_trial_vs_sequential",
        target="Ray's overhead per trial <= the sequential runner's (ratio <= 1.0): Ray starts once and reuses a "
        "finished trial's worker, the runner started a process per trial",
        ours_overhead_s_per_trial=round(ours, 2),
        reference_sequential_overhead_s_per_trial=round(ref, 2),
        ratio=round(ours / ref, 2),
        ray_wall_s=round(ray_wall, 1),
        sequential_wall_s=round(seq_wall, 1),
        train_s_per_trial=round(seq_train / n, 2),
        ray_2_at_a_time_with_asha_wall_s=round(par_wall, 1),
        ray_2_at_a_time_stopped_by_asha=stopped,
        setting=f"{n} points of train.learning_rate, tiny model (2 layers, d 64), {STEPS} steps, eval every "
        f"{EVAL_EVERY} on 8 clips; ray[tune] 2.60, local Ray started by the sweep",
    )


if __name__ == "__main__":
    main()
