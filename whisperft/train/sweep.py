"""``whisperft sweep``: train one config at every point of a grid, one run folder per point.

Points run one after another, each as its own ``whisperft train`` process (so each starts with
a clean device). A point whose ``final/`` is complete is skipped; one that was interrupted resumes
from its checkpoint, because that is what ``train`` does in a folder with checkpoints. The results
go to ``sweep.csv`` and ``sweep.png`` (dev WER against each swept value) in the sweep's folder.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from whisperft.config import load_config, parse_override
from whisperft.errors import UsageError
from whisperft.io import atomic_write_text, is_complete

logger = logging.getLogger("whisperft")

SWEEP_CSV = "sweep.csv"
SWEEP_PLOT = "sweep.png"


@dataclass
class Point:
    values: dict[str, Any]  # dotted key -> value
    folder: Path

    @property
    def overrides(self) -> list[str]:
        return [f"{k}={_text(v)}" for k, v in self.values.items()] + [f"train.output_dir={self.folder}"]


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def is_axis(arg: str) -> bool:
    """``key=v1,v2`` is a grid axis; ``key=value`` and ``key=[a, b]`` (one list value) are not."""
    _, _, raw = arg.partition("=")
    return "," in raw and not raw.strip().startswith(("[", "{"))


def parse_grid(grid: list[str]) -> dict[str, list[Any]]:
    """``["train.learning_rate=1e-5,3e-5", ...]`` -> {"train.learning_rate": [1e-5, 3e-5], ...}."""
    axes: dict[str, list[Any]] = {}
    for item in grid:
        if "=" not in item:
            raise UsageError(f"--grid {item!r}: expected key=v1,v2, e.g. train.learning_rate=1e-5,3e-5")
        key, _, raw = item.partition("=")
        values = [parse_override(f"{key}={part}")[1] for part in raw.split(",") if part.strip()]
        if not values:
            raise UsageError(f"--grid {item!r}: no values after '='")
        if key.strip() in axes:
            raise UsageError(f"--grid: {key.strip()} is given twice")
        axes[key.strip()] = values
    return axes


def folder_name(values: dict[str, Any]) -> str:
    """``learning_rate=1e-05,batch_size=8``: the last part of each key, safe as a folder name."""
    parts = [f"{k.rsplit('.', 1)[-1]}={_text(v)}" for k, v in values.items()]
    return ",".join(parts).replace("/", "_").replace(" ", "")


def plan_points(config: Path, axes: dict[str, list[Any]], out: Path, overrides: list[str]) -> list[Point]:
    """Every point of the grid, each checked as a whole config before anything runs (exit 2 on a bad key)."""
    points = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo, strict=True))
        point = Point(values, out / folder_name(values))
        load_config(config, [*overrides, *point.overrides])
        points.append(point)
    return points


def run_point(config: Path, point: Point, overrides: list[str], debug: bool = False) -> int:
    """``whisperft train CONFIG ... train.output_dir=POINT`` in its own process; its exit code."""
    cmd = [sys.executable, "-m", "whisperft.cli", *(["--debug"] if debug else []), "train", str(config),
           *overrides, *point.overrides, "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the run too: let it finish its step and save a checkpoint
        proc.wait()
        raise


def result_row(point: Point, status: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    final = point.folder / "final"
    if is_complete(final):
        metrics = json.loads((final / "metrics.json").read_text(encoding="utf-8"))
    wer = metrics.get("best_wer")
    return {
        **point.values,
        "dev_wer": round(100 * wer, 2) if wer is not None else "",
        "best_step": metrics.get("best_step", ""),
        "steps": metrics.get("steps", ""),
        "train_seconds": round(metrics["train_seconds"]) if "train_seconds" in metrics else "",
        "status": status,
        "run": str(point.folder),
    }


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def plot_sweep(rows: list[dict[str, Any]], keys: list[str], path: Path) -> None:
    """One panel per swept key: dev WER against its values, one line per setting of the other keys."""
    import matplotlib  # deferred: slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        others = [k for k in keys if k != key]
        groups: dict[str, list[tuple[Any, float]]] = {}
        for r in rows:
            if r["dev_wer"] != "":
                label = ", ".join(f"{k.rsplit('.', 1)[-1]}={r[k]}" for k in others) or "dev WER"
                groups.setdefault(label, []).append((r[key], float(r["dev_wer"])))
        for label, pts in groups.items():  # in the grid's order
            ax.plot([str(x) for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        ax.set_xlabel(key)
        ax.set_ylabel("dev WER (%)")
        if groups:
            ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def sweep(
    config: Path,
    grid: list[str],
    out: Path,
    overrides: list[str] | None = None,
    debug: bool = False,
    runner: Callable[[Path, Point, list[str], bool], int] = run_point,
) -> list[dict[str, Any]]:
    """Run every point (skipping finished ones), then write sweep.csv and sweep.png. Returns the rows."""
    overrides = overrides or []
    axes = parse_grid(grid)
    points = plan_points(config, axes, out, overrides)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, point in enumerate(points, start=1):
        if is_complete(point.folder / "final"):
            logger.info("sweep %d/%d %s: done before, skipped", n, len(points), point.folder.name)
            status = "done"
        else:
            resuming = (point.folder / "checkpoints").is_dir()
            logger.info("sweep %d/%d %s%s", n, len(points), point.folder.name, " (resuming)" if resuming else "")
            code = runner(config, point, overrides, debug)
            status = "done" if code == 0 else f"failed (exit {code})"
        rows.append(result_row(point, status))
        write_csv(rows, out / SWEEP_CSV)  # after every point, so an interrupted sweep keeps its table
    plot_sweep(rows, list(axes), out / SWEEP_PLOT)
    return rows
