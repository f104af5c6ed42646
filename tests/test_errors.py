"""CLI errors: one clear line, exit 2 for usage/config, 1 for runtime, no traceback without --debug."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import invoke, run_cli
from whisperft.errors import WhisperftError


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr


def test_bad_config_lists_every_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("language: svv\ntrain:\n  max_steps: 0\n  batch_size: -1\n  learning_rate: abc\n  bogus: 1\n")
    r = run_cli("train", str(cfg))
    assert r.returncode == 2
    _no_traceback(r.stderr)
    for needle in ("train.max_steps", "train.batch_size", "train.learning_rate", "train.bogus", "language", "sv"):
        assert needle in r.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["train", "nope.yaml"], 2, "config file not found"),
        (["prepare", "--lang", "swedsh", "--source", "."], 2, "unknown language 'swedsh'; did you mean sv"),
        (["prepare", "--lang", "sv", "--source", "/no/such/dir"], 2, "no such file"),
        (["eval", "--model", "./no-model-here", "--data", "."], 2, "not found"),
        (["transcribe", "x.wav", "--model", "tiny", "--format", "doc"], 2, "--format must be one of"),
        (["train", "c.yaml", "train.max_steps"], 2, "key=value"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], code: int, needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process (``invoke``); test_bad_config_lists_every_problem runs a usage error in the real command."""
    (tmp_path / "c.yaml").write_text("language: sv\n")
    monkeypatch.chdir(tmp_path)
    r = invoke(*args)
    assert r.exit_code == code, r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    _no_traceback(r.stderr)
    assert r.stdout == "" and r.stderr.startswith("error: ")  # no blank line left by a progress bar before it


def checkpoint_of_a_run(tmp_path: Path) -> Path:
    """A run as train/checkpoint.py lays it out: RUN/checkpoints/step-N/ holds Accelerate's state, no config.json."""
    step = tmp_path / "run" / "checkpoints" / "step-0000006"
    step.mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.bin", "trainer_state.json", "_COMPLETE"):
        (step / name).write_text("{}")
    return step


def names_final_and_best(code: int, stderr: str, run: Path, best: bool) -> None:
    assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "is a training checkpoint" in stderr and "no config.json" not in stderr
    assert f"use {run / 'final'}" in stderr and (f" or {run / 'best'}" in stderr) == best
    _no_traceback(stderr)


@pytest.mark.parametrize("command", ["export", "transcribe"])
def test_a_checkpoint_is_no_model_the_error_names_final_and_best(
    command: str, tmp_path: Path, tiny_model: Path, wavs: list
) -> None:
    step = checkpoint_of_a_run(tmp_path)
    run = step.parent.parent
    args = {"export": [str(step), str(tmp_path / "ct2")], "transcribe": [str(wavs[0][0]), "--model", str(step)]}
    r = invoke(command, *args[command])
    assert r.exit_code == 2 and "resume it with train" in r.stderr, r.output
    for sub in ("final", "best"):
        shutil.copytree(tiny_model, run / sub)
        r = invoke(command, *args[command])
        names_final_and_best(r.exit_code, r.stderr, run, best=sub == "best")
        assert r.stdout == ""


def test_a_checkpoint_is_no_model_in_the_real_command(tmp_path: Path, tiny_model: Path) -> None:
    """The same error from the installed ``whisperft`` in its own process: exit 2, one line, no traceback."""
    step = checkpoint_of_a_run(tmp_path)
    run = step.parent.parent
    for sub in ("final", "best"):
        shutil.copytree(tiny_model, run / sub)
    r = run_cli("export", str(step), str(tmp_path / "ct2"))
    names_final_and_best(r.returncode, r.stderr, run, best=True)


def test_runtime_error_exits_1(tmp_path: Path, tiny_model: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.json").write_text('{"format": 1, "n_mels": 80, "splits": ["test"]}')
    r = run_cli("eval", "--model", str(tiny_model), "--data", str(store), "--lang", "sv")
    assert r.returncode == 1
    assert "incomplete" in r.stderr
    _no_traceback(r.stderr)
    assert r.stdout == "" and r.stderr.startswith("error: ")  # it fails under eval's progress bar: no blank line
    r = invoke("--debug", "eval", "--model", str(tiny_model), "--data", str(store), "--lang", "sv")
    assert isinstance(r.exception, WhisperftError) and "incomplete" in str(r.exception)  # raised: a traceback


def test_transcribe_reports_bad_files_and_keeps_going(tmp_path: Path, tiny_model: Path, wavs: list) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    r = run_cli("transcribe", str(bad), str(wavs[0][0]), "--model", str(tiny_model), "--lang", "sv",
                "--format", "json", "--output-dir", str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 1
    assert "bad.wav" in r.stderr
    assert (tmp_path / "out" / f"{wavs[0][0].stem}.json").is_file()
    r = run_cli("transcribe", str(tmp_path / "out"), "--model", str(tiny_model))
    assert r.returncode == 2 and "no audio files" in r.stderr
