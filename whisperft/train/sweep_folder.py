"""What a sweep folder is: ``sweep.json``, the spec it searches (a rerun with other arguments or an edited
config is refused), and the names of its trial folders, which Ray's trial folders share.

    OUT/sweep.json      the Spec
    OUT/ray/            Ray Tune's experiment state (resumes an interrupted sweep)
    OUT/03-learning_rate=3.2e-05,batch_size=8/   one whisperft run folder per trial
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from whisperft.errors import UsageError
from whisperft.io import atomic_write_json
from whisperft.train.sweep_space import short_text

SWEEP_SPEC = "sweep.json"  # what the folder's sweep searches; a rerun with another space is refused
RAY_DIR = "ray"  # Ray Tune's own results folder (experiment state, each trial's result.json and progress.csv)


def trial_name(number: int, values: dict[str, Any]) -> str:
    """``03-learning_rate=3.2e-05,batch_size=8``: the trial's number and the last part of each swept key,
    safe as a folder name; Ray's trial folder and the whisperft run folder share it."""
    parts = [f"{k.rsplit('.', 1)[-1]}={short_text(v)}" for k, v in values.items()]
    return f"{number:02d}-" + ",".join(parts).replace("/", "_").replace(" ", "")


def trial_dirname(trial: Any) -> str:
    """Ray's trial_dirname_creator: the trial's ``trial_name``."""
    # experiment_tag starts with the trial's number in creation order (ray/tune/search/basic_variant.py,
    # search_generator.py); trial ids are random for searchers such as Optuna
    return trial_name(int(trial.experiment_tag.split("_", 1)[0]), trial.config)


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
