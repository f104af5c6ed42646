"""``whisperft sweep``: trials of one config on Ray Tune, each a whisperft training run in its own folder.

Ray Tune schedules the trials: on a local Ray started in-process (one trial per GPU, else per CPU) or
on a cluster (``address``). The search is a grid, random sampling, or Optuna's TPE
(https://docs.ray.io/en/latest/tune/api/suggestion.html) over values and ranges:

    train.learning_rate=1e-5,3e-5          values: a grid axis, or a choice for random and optuna
    train.learning_rate=loguniform(1e-6,1e-4)   uniform(a,b), loguniform(a,b), randint(a,b) (a <= n < b)

ASHA (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning", arXiv:1810.05934) stops
trials whose validation WER, reported at each of the run's evaluations, is in the worse half of
those that reached the same step. Each trial trains with the same ``train()`` as ``whisperft train``,
in ``OUT/<trial>/``, and resumes from its own checkpoint. An interrupted sweep (Ctrl-C, SIGTERM)
saves Ray's experiment state in ``OUT/ray/`` and the same command continues it. The results go to
``sweep.csv`` and ``sweep.png`` (dev WER against each swept value).
"""

from __future__ import annotations

import csv
import gc
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.state import AcceleratorState, GradientState

from whisperft.config import Config, load_config, parse_override
from whisperft.errors import UsageError, WhisperftError
from whisperft.io import atomic_write_json, atomic_write_text, is_complete
from whisperft.models import quiet_transformers
from whisperft.train.loop import train

logger = logging.getLogger("whisperft")

SWEEP_CSV = "sweep.csv"
SWEEP_PLOT = "sweep.png"
SWEEP_SPEC = "sweep.json"  # what the folder's sweep searches; a rerun with another space is refused
RAY_DIR = "ray"  # Ray Tune's own results folder (experiment state, each trial's result.json and progress.csv)
SEARCHES = ("grid", "random", "optuna")
RANGES = ("uniform", "loguniform", "randint")
ASHA_REDUCTION_FACTOR = (
    2  # keep the better half at each rung: with a handful of trials, 4 (Ray's default) stops too many
)


@dataclass(frozen=True)
class Param:
    """One swept key: ``kind`` "choice" with its typed ``values``, or a range with (low, high)."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def samples(self) -> tuple[Any, ...]:
        """The values a trial can take at the edges: every choice, or a range's two ends."""
        if self.kind == "randint":
            return (self.values[0], self.values[1] - 1)
        return self.values


_RANGE = re.compile(r"^(choice|uniform|loguniform|randint)\((.*)\)$")


def is_param(arg: str) -> bool:
    """``key=v1,v2`` or ``key=loguniform(a,b)`` is swept; ``key=value`` and ``key=[a, b]`` are fixed overrides."""
    _, _, raw = arg.partition("=")
    raw = raw.strip()
    return bool(_RANGE.match(raw)) or ("," in raw and not raw.startswith(("[", "{")))


def parse_param(arg: str) -> Param:
    """``train.learning_rate=loguniform(1e-6,1e-4)`` -> Param("train.learning_rate", "loguniform", (1e-6, 1e-4)).

    Raises UsageError for a missing ``=``, no values, or a range whose ends are not numbers in order."""
    if "=" not in arg:
        raise UsageError(f"sweep parameter {arg!r}: expected key=v1,v2 or key=loguniform(low,high)")
    key, _, raw = arg.partition("=")
    key, raw = key.strip(), raw.strip()
    m = _RANGE.match(raw)
    kind, body = (m.group(1), m.group(2)) if m else ("choice", raw)
    parts = [part.strip() for part in body.split(",") if part.strip()]
    if not parts:
        raise UsageError(f"sweep parameter {arg!r}: no values after '='")
    if kind not in RANGES:
        return Param(key, kind, tuple(parse_override(f"{key}={part}")[1] for part in parts))
    try:  # YAML 1.1 reads 1e-6 as a string: a range's ends are numbers by definition
        values = tuple(int(part) if kind == "randint" else float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 2:
        raise UsageError(f"sweep parameter {arg!r}: {kind} takes two numbers, {kind}(low,high)")
    low, high = values
    if not low < high or (kind == "loguniform" and low <= 0):
        need = "0 < low < high" if kind == "loguniform" else "low < high"
        raise UsageError(f"sweep parameter {arg!r}: {kind} needs {need}")
    return Param(key, kind, values)


def parse_space(args: list[str], search: str) -> dict[str, Param]:
    """Every swept key, once; a grid takes values only. Raises UsageError naming the parameter."""
    if search not in SEARCHES:
        raise UsageError(f"--search {search!r}: expected one of {', '.join(SEARCHES)}")
    space: dict[str, Param] = {}
    for arg in args:
        param = parse_param(arg)
        if param.key in space:
            raise UsageError(f"sweep parameter {param.key} is given twice")
        if search == "grid" and param.kind != "choice":
            raise UsageError(f"{arg}: a grid takes values (key=v1,v2); sample ranges with --search random or optuna")
        space[param.key] = param
    if not space:
        raise UsageError(
            "nothing to sweep: give key=v1,v2 or key=loguniform(low,high), e.g. train.learning_rate=1e-5,3e-5"
        )
    return space


def check_space(config: Path, space: dict[str, Param], overrides: list[str]) -> Config:
    """Load the config at every choice and both ends of every range, so that a bad key or value is a
    UsageError (exit 2) before Ray starts. Returns the config with the first sample of each key."""
    first = load_config(config, [*overrides, *(f"{p.key}={_text(p.samples()[0])}" for p in space.values())])
    for p in space.values():
        for value in p.samples()[1:]:
            load_config(config, [*overrides, f"{p.key}={_text(value)}"])
    if not first.data.eval_split:
        raise UsageError("data.eval_split: a sweep ranks its trials by validation WER; name a split to evaluate on")
    return first


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else _text(value)


def trial_name(number: int, values: dict[str, Any]) -> str:
    """``03-learning_rate=3.2e-05,batch_size=8``: the trial's number and the last part of each swept key,
    safe as a folder name; Ray's trial folder and the whisperft run folder share it."""
    parts = [f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in values.items()]
    return f"{number:02d}-" + ",".join(parts).replace("/", "_").replace(" ", "")


def _dirname(trial: Any) -> str:  # Ray's trial_dirname_creator
    # experiment_tag starts with the trial's number in creation order (ray/tune/search/basic_variant.py,
    # search_generator.py); trial ids are random for searchers such as Optuna
    return trial_name(int(trial.experiment_tag.split("_", 1)[0]), trial.config)


def quiet_worker(debug: bool) -> None:
    """whisperft's log lines on the worker's stderr (Ray forwards them to the driver, prefixed with the
    trial's pid); transformers' and accelerate's chatter off unless ``debug``, as in the CLI."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.propagate = False
    if not debug:
        warnings.filterwarnings("ignore")
        logging.getLogger("accelerate").setLevel(logging.ERROR)
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
    cfg = load_config(Path(config), [*overrides, *(f"{k}={_text(v)}" for k, v in values.items()),
                                     f"train.output_dir={folder}"])  # fmt: skip
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
class Spec:
    """What a sweep folder searches; saved as sweep.json and compared when the same folder is run again."""

    config: str
    config_sha256: str  # its contents: an edited config would mix two experiments in one table
    overrides: list[str]
    params: list[str]
    search: str
    trials: int
    asha: bool
    concurrent: int | None  # Ray keeps the first run's limit when it resumes


def check_spec(out: Path, spec: Spec) -> None:
    path = out / SWEEP_SPEC
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != asdict(spec):
            changed = [k for k in before if before[k] != asdict(spec).get(k)]
            raise UsageError(
                f"{out} holds another sweep ({', '.join(changed)} differ); give the same arguments to resume it, "
                "or choose another --out"
            )


def save_spec(out: Path, spec: Spec) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SWEEP_SPEC, asdict(spec))


def sweep(
    config: Path,
    params: list[str],
    out: Path,
    overrides: list[str] | None = None,
    search: str = "grid",
    trials: int | None = None,
    concurrent: int | None = None,
    address: str | None = None,
    asha: bool = True,
    debug: bool = False,
) -> list[dict[str, Any]]:
    """Run (or continue) the sweep on Ray Tune, then write sweep.csv and sweep.png. Returns the rows.

    ``trials``: how many times the grid runs (default 1), or how many points random and optuna sample
    (default 8). ``concurrent``: at most this many trials at once (default: as many as the resources
    hold); each trial asks for one GPU when Ray sees any, else one CPU.
    Raises UsageError (exit 2) for a bad parameter or key before Ray starts, and WhisperftError when the
    sweep was interrupted (its table is written first). A failed trial is a row with status "failed: ..."."""
    overrides = overrides or []
    space = parse_space(params, search)
    base = check_space(config, space, overrides)
    trials = (1 if search == "grid" else 8) if trials is None else trials
    steps = [k for k in ("train.max_steps", "train.eval_steps") if k in space]
    if asha and steps:
        raise UsageError(f"ASHA compares trials at the same steps: sweep {', '.join(steps)} with --no-asha")
    if trials < 1 or (concurrent is not None and concurrent < 1):
        raise UsageError("--trials and --concurrent take a number of 1 or more")
    missing = [m for m in ("ray", *(["optuna"] if search == "optuna" else [])) if importlib.util.find_spec(m) is None]
    if missing:
        raise WhisperftError(f"whisperft sweep needs {', '.join(missing)}: pip install 'whisperft[sweep]'")
    if address and address.startswith("ray://"):
        raise UsageError(
            f"--address {address}: Ray Client runs Tune on the cluster, away from this folder; run the sweep on a "
            "node of the cluster with --address auto, its folder on the cluster's shared filesystem"
        )
    out = out.resolve()
    spec = Spec(str(config.resolve()), hashlib.sha256(config.read_bytes()).hexdigest(), overrides, params, search,
                trials, asha, concurrent)  # fmt: skip
    check_spec(out, spec)
    import ray  # deferred: Ray is an extra, and slow to import
    from ray import tune

    if address:
        ray.init(address=address)
    else:
        ray.init(include_dashboard=False)
    try:
        save_spec(out, spec)
        per_trial = {"gpu": 1, "cpu": 1} if ray.cluster_resources().get("GPU") else {"cpu": 1}
        trainable = tune.with_resources(
            partial(
                run_trial, config=str(config.resolve()), overrides=overrides, out=str(out), cwd=os.getcwd(), debug=debug
            ),
            per_trial,
        )
        ray_dir = out / RAY_DIR
        if tune.Tuner.can_restore(str(ray_dir)):
            logger.info("continuing the sweep in %s", out)
            tuner = tune.Tuner.restore(str(ray_dir), trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = new_tuner(trainable, space, search, base, trials, concurrent, asha, out)
        with stop_signals() as stopped:
            tuner.fit()
    finally:
        ray.shutdown()
    # the trials as Ray saved them: after a stop, those it will resume are still RUNNING or PENDING there
    analysis = tune.ExperimentAnalysis(str(ray_dir))
    rows = sorted((result_row(t, analysis.trial_dataframes.get(t.trial_id), out, list(space)) for t in analysis.trials),
                  key=lambda r: r["trial"])  # fmt: skip
    if rows:
        write_csv(rows, out / SWEEP_CSV)
        plot_sweep(rows, space, out / SWEEP_PLOT)
    if stopped[0]:
        raise WhisperftError(
            "sweep interrupted; Ray saved its state: run the same command again to resume "
            f"(the table so far: {out / SWEEP_CSV})"
        )
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
    scheduler = ASHAScheduler(time_attr="step", max_t=base.train.max_steps + 1, grace_period=grace,
                              reduction_factor=ASHA_REDUCTION_FACTOR) if asha else None  # fmt: skip
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
            trial_dirname_creator=_dirname,
        ),
        run_config=tune.RunConfig(storage_path=str(out), name=RAY_DIR, verbose=1),
    )


def result_row(trial: Any, history: Any, out: Path, keys: list[str]) -> dict[str, Any]:
    """One trial's line of sweep.csv: from its run folder when it finished, else from the validation WER
    it reported to Ray (``history``: its progress.csv as a DataFrame, or None before any report).
    Status: done, stopped by ASHA at step N, failed: ERROR, interrupted (started), pending (not started)."""
    name = trial.storage.trial_dir_name or _dirname(trial)  # a trial never started has no folder yet
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
            pts = [(r[key], float(r["dev_wer"])) for r in rows
                   if r["dev_wer"] != "" and r["status"].startswith("done") == done]  # fmt: skip
            if categorical:
                order = [_text(v) for v in p.values]
                xs = [order.index(_text(x)) if _text(x) in order else len(order) for x, _ in pts]
            else:
                xs = [float(x) for x, _ in pts]
            ax.scatter(xs, [y for _, y in pts], label=label, marker="o",
                       facecolors=None if done else "none", edgecolors="C0" if done else "C1")  # fmt: skip
        if categorical:
            ax.set_xticks(range(len(p.values)), [_short(v) for v in p.values])
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
