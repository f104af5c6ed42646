from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from whisperft.config import Config, apply_overrides, config_from_dict, load_config
from whisperft.errors import ConfigError, UsageError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


def test_configs_exist() -> None:
    names = {p.name for p in CONFIGS}
    for want in ("small-1000.yaml", "tiny.yaml", "base.yaml", "medium.yaml", "large-v3.yaml", "cpu-smoke.yaml"):
        assert want in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_validates_and_names_its_command(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# whisperft train configs/{path.name}")


def test_small_1000_is_the_recipe() -> None:
    cfg = load_config(Path(__file__).parent.parent / "configs" / "small-1000.yaml")
    assert (cfg.model.name, cfg.language, cfg.train.max_steps) == ("small", "sv", 1000)
    assert (cfg.train.learning_rate, cfg.train.batch_size, cfg.train.warmup_steps) == (1e-5, 16, 50)
    assert cfg.train.mixed_precision == "fp16"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"train": {"max_stepz": 3}}, "train.max_stepz: unknown key"),
        ({"bogus": 1}, "bogus: unknown key"),
        ({"train": {"max_steps": "ten"}}, "train.max_steps: expected an integer"),
        ({"train": {"max_steps": 0}}, "train.max_steps: must be positive"),
        ({"train": {"max_steps": -5}}, "train.max_steps: must be positive"),
        ({"train": {"batch_size": 0}}, "train.batch_size: must be positive"),
        ({"train": {"learning_rate": 0}}, "train.learning_rate: must be positive"),
        ({"train": {"learning_rate": -1e-5}}, "train.learning_rate: must be positive"),
        ({"train": {"mixed_precision": "fp8"}}, "train.mixed_precision: expected 'no' or 'fp16' or 'bf16'"),
        ({"train": {"gradient_checkpointing": "yes"}}, "train.gradient_checkpointing: expected true/false"),
        ({"language": "swedsh"}, "language: unknown language 'swedsh'"),
        ({"language": "spanich"}, "did you mean es (spanish)"),
        ({"task": "summarize"}, "task: expected 'transcribe' or 'translate'"),
        ({"data": {"max_duration": 45}}, "data.max_duration: must be in (0, 30]"),
        ({"model": {"audio_context_s": 0}}, "model.audio_context_s"),
        ({"eval": {"num_beams": 0}}, "eval.num_beams: must be positive"),
        ({"train": [1, 2]}, "train: must be a mapping"),
    ],
)
def test_bad_values_name_their_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"train": {"max_steps": 0, "batch_size": "x", "learning_rate": -1, "nope": 1}})
    assert len(err.value.problems) == 4


def test_defaults_live_in_the_schema() -> None:
    cfg = config_from_dict({})
    assert cfg.train.max_steps == 1000 and cfg.model.name == "small"


def test_overrides_and_model_shorthand(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"model": "base", "train": {"max_steps": 5}}))
    cfg = load_config(p, ["train.max_steps=20", "train.learning_rate=3e-4", "model=bundled:base"])
    assert cfg.train.max_steps == 20 and cfg.train.learning_rate == 3e-4 and cfg.model.name == "bundled:base"
    cfg = load_config(p, ["model.audio_context_s=10"])
    assert cfg.model.name == "base" and cfg.model.audio_context_s == 10.0
    with pytest.raises(UsageError):
        load_config(p, ["train.max_steps"])
    with pytest.raises(ConfigError, match=r"train\.nope: unknown key"):
        load_config(p, ["train.nope=1"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = config_from_dict({"language": "Swedish", "train": {"max_steps": 7}})
    cfg.save(tmp_path / "r.yaml")
    assert load_config(tmp_path / "r.yaml") == cfg


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(UsageError, match="invalid YAML at line"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(UsageError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_apply_overrides_creates_sections() -> None:
    assert apply_overrides({}, ["eval.batch_size=4"]) == {"eval": {"batch_size": 4}}


def test_nan_is_not_a_valid_norm_or_decay() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"train": {"max_grad_norm": float("nan"), "weight_decay": float("nan")}})
    assert "train.max_grad_norm" in str(err.value) and "train.weight_decay" in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3h30m", 12600), ("90m", 5400), ("1.5h", 5400), ("45s", 45), ("45", 45), ("2h 5m", 7500), ("abc", None),
     ("0", None), ("h", None), ("-5m", None)],
)  # fmt: skip
def test_time_budgets_parse(text: str, seconds: float | None) -> None:
    from whisperft.config import parse_duration

    assert parse_duration(text) == seconds
