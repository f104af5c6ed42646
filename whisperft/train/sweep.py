"""``whisperft sweep``: trials of one config on Ray Tune, each a whisperft training run in its own folder.

Ray Tune schedules the trials: on a local Ray started in-process (one trial per GPU, else per CPU) or
on a cluster (``address``). The search is a grid, random sampling, or Optuna's TPE
(https://docs.ray.io/en/latest/tune/api/suggestion.html) over values and ranges (``train/sweep_space``).

ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning", arXiv:1810.05934) stops
trials whose validation WER, reported at each of the run's evaluations, is in the worse half of
those that reached the same step. Each trial trains with the same ``train()`` as ``whisperft train``,
in ``OUT/<trial>/``, and resumes from its own checkpoint. An interrupted sweep (Ctrl-C, SIGTERM)
saves Ray's experiment state in ``OUT/ray/`` and the same command continues it. The results go to
``sweep.csv`` and ``sweep.png`` (dev WER against each swept value, ``train/sweep_results``).

This module is the driver; each trial runs in ``train/sweep_worker``, and ``train/sweep_folder`` says what
a sweep folder holds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from whisperft.config import Config, find_config, load_config
from whisperft.errors import ConfigError, UsageError, WhisperftError
from whisperft.extras import require
from whisperft.train.request import SweepRequest
from whisperft.train.sweep_folder import RAY_DIR, Spec, check_spec, save_spec, trial_dirname
from whisperft.train.sweep_results import SWEEP_CSV, SWEEP_PLOT, plot_sweep, result_row, write_csv
from whisperft.train.sweep_space import Param, check_space, is_param, parse_space
from whisperft.train.sweep_worker import run_trial

logger = logging.getLogger("whisperft")

ASHA_REDUCTION_FACTOR = (
    2  # keep the better half at each rung: with a handful of trials, 4 (Ray's default) stops too many
)


def plan_search(
    space: dict[str, Param], search: str, seed: int, concurrent: int | None = None
) -> tuple[dict[str, Any], Any]:
    """Ray Tune's param_space for ``space``, and the search algorithm (None: Ray's grid). Random search
    takes ``concurrent`` itself: Tune applies max_concurrent_trials to a Searcher only (ray/tune/tune.py)."""
    from ray import tune

    domains: dict[str, Any] = {}
    for key, p in space.items():
        if p.kind == "choice":
            domains[key] = tune.grid_search(list(p.values)) if search == "grid" else tune.choice(list(p.values))
        else:
            low, high = p.values
            domains[key] = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[p.kind](
                low, high
            )
    if search == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return domains, OptunaSearch(seed=seed)
    if search == "random":
        from ray.tune.search import BasicVariantGenerator

        return domains, BasicVariantGenerator(random_state=seed, max_concurrent=concurrent or 0)
    return domains, None


@contextmanager
def stop_signals() -> Iterator[list[bool]]:
    """Ctrl-C or SIGTERM (a scheduler's or container's stop) ends the sweep gracefully: Ray Tune saves its
    experiment state and stops the trials. Tune listens for SIGUSR1 (ray/tune/tune.py,
    _setup_signal_catching); its own SIGINT handler is turned off so that both signals take this path and
    the caller learns of the stop. A second signal aborts at once. Yields a one-item list, True once stopped."""
    stopped = [False]

    def on_signal(signum: int, frame: Any) -> None:
        if stopped[0] or not callable(signal.getsignal(signal.SIGUSR1)):
            raise KeyboardInterrupt  # a second signal, or one before Tune listens (its default action would kill)
        stopped[0] = True
        logger.warning("stopping the sweep; Ray Tune saves its state (Ctrl-C again to abort now)")
        signal.raise_signal(signal.SIGUSR1)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield stopped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = env


@dataclass
class SweepResult:
    """A sweep's folder (as given, or derived from the config) and one row per trial
    (``sweep_results.result_row``), in trial order."""

    folder: Path
    rows: list[dict[str, Any]]


def sweep(request: SweepRequest) -> SweepResult:
    """Run (or continue) the sweep on Ray Tune, then write sweep.csv and sweep.png. Each trial asks for one
    GPU when Ray sees any, else one CPU. Raises ConfigError or UsageError (exit 2) for a bad request,
    parameter or key before Ray starts, and WhisperftError when the sweep was interrupted (its table is
    written first). A failed trial is a row with status "failed: ..."."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    config = find_config(request.config)
    swept = [a for a in request.args if is_param(a)]
    overrides = [a for a in request.args if not is_param(a)]
    space = parse_space(swept, request.search)
    base = check_space(config, space, overrides)
    steps = [k for k in ("train.max_steps", "train.eval_steps") if k in space]
    if request.asha and steps:
        raise UsageError(f"ASHA compares trials at the same steps: sweep {', '.join(steps)} with --no-asha")
    require("whisperft sweep", ["ray", *(["optuna"] if request.search == "optuna" else [])])
    folder = request.out or Path(load_config(config, overrides).train.output_dir + "-sweep")
    out = folder.resolve()
    digest = hashlib.sha256(config.read_bytes()).hexdigest()
    trials = request.sample_count
    spec = Spec(
        str(config.resolve()), digest, overrides, swept, request.search, trials, request.asha, request.concurrent
    )
    check_spec(out, spec)
    stopped = _run_tune(request, config, overrides, out, spec, space, base)
    rows = _collect(out, space)
    if stopped:
        raise WhisperftError(
            "sweep interrupted; Ray saved its state: run the same command again to resume "
            f"(the table so far: {out / SWEEP_CSV})"
        )
    return SweepResult(folder, rows)


def _run_tune(
    request: SweepRequest, config: Path, overrides: list[str], out: Path, spec: Spec, space: dict, base: Config
) -> bool:
    """Start (or join) Ray, fit the trials (a new Tuner, or the saved one restored), and shut Ray down.
    True when a signal stopped the sweep."""
    import ray  # deferred: Ray is an extra, and slow to import
    from ray import tune

    if request.address:
        ray.init(address=request.address)
    else:
        ray.init(include_dashboard=False)
    try:
        save_spec(out, spec)
        per_trial = {"gpu": 1, "cpu": 1} if ray.cluster_resources().get("GPU") else {"cpu": 1}
        trial = partial(
            run_trial,
            config=str(config.resolve()),
            overrides=overrides,
            out=str(out),
            cwd=os.getcwd(),
            debug=request.debug,
        )
        trainable = tune.with_resources(trial, per_trial)
        ray_dir = out / RAY_DIR
        if tune.Tuner.can_restore(str(ray_dir)):
            logger.info("continuing the sweep in %s", out)
            tuner = tune.Tuner.restore(str(ray_dir), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = new_tuner(
                trainable, space, request.search, base, request.sample_count, request.concurrent, request.asha, out
            )
        with stop_signals() as stopped:
            tuner.fit()
    finally:
        ray.shutdown()
    return bool(stopped[0])


def _collect(out: Path, space: dict) -> list[dict[str, Any]]:
    """The trials as Ray saved them, one row each (after a stop, those it will resume are still RUNNING or
    PENDING there); sweep.csv and sweep.png written when there are any."""
    from ray import tune  # deferred: Ray is an extra, and slow to import

    analysis = tune.ExperimentAnalysis(str(out / RAY_DIR))
    rows = sorted(
        (result_row(t, analysis.trial_dataframes.get(t.trial_id), out, list(space)) for t in analysis.trials),
        key=lambda r: r["trial"],
    )
    if rows:
        write_csv(rows, out / SWEEP_CSV)
        plot_sweep(rows, space, out / SWEEP_PLOT)
    return rows


def new_tuner(
    trainable: Any,
    space: dict[str, Param],
    search: str,
    base: Config,
    trials: int,
    concurrent: int | None,
    asha: bool,
    out: Path,
) -> Any:
    """A Ray Tune ``Tuner`` for a new sweep: minimum validation WER, ASHA over the run's steps (its rungs
    at eval_steps x 2^k), workers reused across trials (``fresh_process_state``), results under ``out/ray``."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    domains, search_alg = plan_search(space, search, base.train.seed, concurrent)
    # max_t past the last step: ASHA stops a trial at max_t, and the last step's report comes after final/
    grace = min(base.train.eval_steps, base.train.max_steps)  # a run that evaluates only at its end has one rung
    scheduler = (
        ASHAScheduler(
            time_attr="step", max_t=base.train.max_steps + 1, grace_period=grace, reduction_factor=ASHA_REDUCTION_FACTOR
        )
        if asha
        else None
    )
    return tune.Tuner(
        trainable,
        param_space=domains,
        tune_config=tune.TuneConfig(
            metric="wer",
            mode="min",
            search_alg=search_alg,
            scheduler=scheduler,
            num_samples=trials,
            max_concurrent_trials=None if search == "random" else concurrent,  # random: its generator limits
            reuse_actors=True,  # a finished trial's worker takes the next: no new process, no new imports
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(storage_path=str(out), name=RAY_DIR, verbose=1),
    )
