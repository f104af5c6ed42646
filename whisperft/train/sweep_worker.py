"""A sweep's trial in its Ray worker: the process made ready (whisperft's logging, the other libraries quiet,
what an earlier trial left reset), then one ``whisperft train`` run reporting validation WER to Ray Tune.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import torch
from accelerate.state import AcceleratorState, GradientState

from whisperft.config import load_config
from whisperft.log import setup_logging
from whisperft.models import quiet_transformers
from whisperft.train.loop import train
from whisperft.train.sweep_space import override_text


def quiet_worker(debug: bool) -> None:
    """whisperft's log lines on the worker's stderr (Ray forwards them to the driver, prefixed with the
    trial's pid); transformers' and accelerate's chatter off unless ``debug``, as in the CLI."""
    setup_logging(debug, plain=True)
    if not debug:
        quiet_transformers()


def fresh_process_state() -> None:
    """Forget what an earlier trial left in this worker (Ray reuses a finished trial's process for the next,
    which saves the imports: bench_sweep): Accelerate's process-wide state, a singleton that refuses another
    trial's mixed precision (reset as Accelerate's own test scripts do), and cached GPU memory."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_trial(
    values: dict[str, Any], config: str, overrides: list[str], out: str, cwd: str, debug: bool = False
) -> None:
    """One trial, in a Ray worker: ``whisperft train CONFIG OVERRIDES KEY=VALUE...`` in ``out/<trial>``.

    Validation WER goes to Ray Tune at each evaluation (ASHA may stop the trial there); the last one only
    after ``final/`` is written, so that a finished run is never cut short. A trial Ray starts again
    (after an interrupted sweep) resumes from the run folder's checkpoint."""
    from ray import tune  # deferred: Ray is an extra, loaded only by the sweep

    os.chdir(cwd)  # Ray starts each trial in its own folder; the config's relative paths are the user's
    quiet_worker(debug)
    fresh_process_state()
    folder = Path(out) / Path(tune.get_context().get_trial_dir()).name
    cfg = load_config(
        Path(config),
        [*overrides, *(f"{k}={override_text(v)}" for k, v in values.items()), f"train.output_dir={folder}"],
    )
    last: dict[str, Any] = {}

    def report(step: int, metrics: dict[str, Any]) -> None:
        if metrics["wer"] is None:  # references without words: nothing to rank by
            return
        last.update(wer=metrics["wer"], cer=metrics["cer"], step=step)
        if step < cfg.train.max_steps:
            tune.report(dict(last))

    result = train(cfg, progress=False, on_eval=report)
    if last:
        tune.report({**last, "step": result.steps, "best_wer": result.best_wer})
