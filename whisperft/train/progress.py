"""What a run reports while it trains: the train_log.jsonl records, the running loss, and one progress bar."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from whisperft.io import atomic_write_text

TRAIN_LOG = "train_log.jsonl"


def append_log(output_dir: Path, record: dict[str, Any]) -> None:
    with open(Path(output_dir) / TRAIN_LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def restart_log(output_dir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite train_log.jsonl as the checkpoint a run resumes from recorded it (its ``history``): the
    records of later steps, which the run trains again, go, so that each step is logged once."""
    atomic_write_text(Path(output_dir) / TRAIN_LOG, "".join(json.dumps(r) + "\n" for r in history))


class LossMeter:
    """Mean training loss and steps/s since the last log record."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total, self.count, self.since = 0.0, 0, time.perf_counter()

    def add(self, loss: float) -> None:
        self.total += loss
        self.count += 1

    def record(self, step: int, lr: float, steps: int) -> dict[str, Any]:
        """The log record for the last ``steps`` optimizer steps; starts a new window."""
        rec = {"step": step, "loss": self.total / self.count, "lr": lr, "steps_per_s": steps / self.elapsed()}
        self.reset()
        return rec

    def elapsed(self) -> float:
        return time.perf_counter() - self.since


class TrainProgress:
    """A rich progress bar showing loss, learning rate, steps/s and ETA (main process only)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        self.progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # beside the logs; stdout keeps the results
            transient=False,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, loss="-", lr="-", rate="")
        self.t0, self.s0 = time.perf_counter(), start

    def update(self, step: int, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = (step - self.s0) / dt if dt > 0 else 0.0
        loss_s = f"{loss:.4f}" if math.isfinite(loss) else "nan"
        self.progress.update(self.task, completed=step, loss=loss_s, lr=f"{lr:.2e}", rate=f"{rate:.2f} step/s")

    def note(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text)

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()


class Budget:
    """``train.time_budget``: says when to stop so that the checkpoint and final/ still fit in the budget.

    The reserve is twice the longest optimizer step, the longest validation and twice the longest
    save seen so far (a checkpoint, then final/); before the first save it is estimated from the
    checkpoint's size at 100 MB/s.
    """

    def __init__(self, seconds: float | None, start: float, checkpoint_bytes: int) -> None:
        self.deadline = None if seconds is None else start + seconds
        self.seconds = seconds
        self.step_s = self.eval_s = 0.0
        self.save_s = 1.0 + checkpoint_bytes / 100e6
        self._measured_save = False

    def stepped(self, step_seconds: float) -> None:
        self.step_s = max(self.step_s, step_seconds)

    def evaluated(self, seconds: float) -> None:
        self.eval_s = max(self.eval_s, seconds)

    def saved(self, seconds: float) -> None:
        self.save_s = max(self.save_s, seconds) if self._measured_save else seconds
        self._measured_save = True

    def exhausted(self) -> bool:
        if self.deadline is None:
            return False
        reserve = 2 * self.step_s + self.eval_s + 2 * self.save_s
        return time.perf_counter() + reserve >= self.deadline
