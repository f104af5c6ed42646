"""A sweep's results: one row per trial from its run folder or from what it reported to Ray, written as
``sweep.csv``, and ``sweep.png`` (dev WER against each swept value).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from whisperft.io import atomic_write_text, is_complete
from whisperft.train.sweep_folder import trial_dirname
from whisperft.train.sweep_space import Param, override_text, short_text

SWEEP_CSV = "sweep.csv"
SWEEP_PLOT = "sweep.png"


def result_row(trial: Any, history: Any, out: Path, keys: list[str]) -> dict[str, Any]:
    """One trial's line of sweep.csv: from its run folder when it finished, else from the validation WER
    it reported to Ray (``history``: its progress.csv as a DataFrame, or None before any report).
    Status: done, stopped by ASHA at step N, failed: ERROR, interrupted (started), pending (not started)."""
    name = trial.storage.trial_dir_name or trial_dirname(trial)  # a trial never started has no folder yet
    run = out / name
    final = run / "final"
    if is_complete(final):
        metrics = json.loads((final / "metrics.json").read_text(encoding="utf-8"))
        status = "done (train.time_budget ran out)" if metrics.get("stopped_by_time_budget") else "done"
        best, best_step = metrics.get("best_wer"), metrics.get("best_step", "")
        steps, seconds = metrics.get("steps", ""), round(metrics["train_seconds"])
    else:
        trained = [] if history is None or "wer" not in history else history[history["step"] > 0]
        best = float(trained["wer"].min()) if len(trained) else None
        best_step = int(trained["step"][trained["wer"].idxmin()]) if len(trained) else ""
        steps, seconds = (trial.last_result or {}).get("step", ""), ""
        if trial.status == "ERROR":
            error = str(trial.get_error() or "error").strip().splitlines()
            status = "failed: " + (error[-1] if error else "")[:200]
        elif trial.status == "TERMINATED":
            status = f"stopped by ASHA at step {steps}"
        else:  # RUNNING or PENDING in the saved state: the next run of the command trains it
            status = "interrupted" if run.is_dir() else "pending"
    return {
        "trial": name,
        **{k: trial.config.get(k, "") for k in keys},
        "dev_wer": round(100 * best, 2) if best is not None else "",
        "best_step": best_step,
        "steps": steps,
        "train_seconds": seconds,
        "status": status,
        "run": str(run),
    }


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def plot_sweep(rows: list[dict[str, Any]], space: dict[str, Param], path: Path) -> None:
    """One panel per swept key: each trial's best dev WER against its value (log scale for loguniform);
    filled for finished trials, hollow for those ASHA stopped."""
    import matplotlib  # deferred: slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = list(space)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        p = space[key]
        categorical = p.kind == "choice"
        for done, label in ((True, "finished"), (False, "stopped early")):
            pts = [
                (r[key], float(r["dev_wer"]))
                for r in rows
                if r["dev_wer"] != "" and r["status"].startswith("done") == done
            ]
            if categorical:
                order = [override_text(v) for v in p.values]
                xs = [order.index(override_text(x)) if override_text(x) in order else len(order) for x, _ in pts]
            else:
                xs = [float(x) for x, _ in pts]
            ax.scatter(
                xs,
                [y for _, y in pts],
                label=label,
                marker="o",
                facecolors=None if done else "none",
                edgecolors="C0" if done else "C1",
            )
        if categorical:
            ax.set_xticks(range(len(p.values)), [short_text(v) for v in p.values])
        elif p.kind == "loguniform":
            ax.set_xscale("log")
            ax.tick_params(axis="x", which="both", labelrotation=30, labelsize=7)  # minor labels within a decade
        elif p.kind == "randint":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(key)
        ax.set_ylabel("best dev WER (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
