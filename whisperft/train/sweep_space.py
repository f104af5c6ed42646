"""The sweep's parameter grammar: which command-line arguments are swept, and the values each may take.

    train.learning_rate=1e-5,3e-5          values: a grid axis, or a choice for random and optuna
    train.learning_rate=loguniform(1e-6,1e-4)   uniform(a,b), loguniform(a,b), randint(a,b) (a <= n < b)

Every choice and both ends of every range are loaded as config overrides before Ray starts, so a bad key
or value is a UsageError (exit 2) with nothing written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from whisperft.config import Config, load_config, parse_override
from whisperft.errors import UsageError

SEARCHES = ("grid", "random", "optuna")
RANGES = ("uniform", "loguniform", "randint")


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
    first = load_config(config, [*overrides, *(f"{p.key}={override_text(p.samples()[0])}" for p in space.values())])
    for p in space.values():
        for value in p.samples()[1:]:
            load_config(config, [*overrides, f"{p.key}={override_text(value)}"])
    if not first.data.eval_split:
        raise UsageError("data.eval_split: a sweep ranks its trials by validation WER; name a split to evaluate on")
    return first


def override_text(value: Any) -> str:
    """``value`` as it is written after ``key=`` in an override (YAML flow style)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def short_text(value: Any) -> str:
    """``value`` for a folder name or an axis label: floats to three significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else override_text(value)
