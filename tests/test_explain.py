"""A CLI that explains itself: --version, an example in every --help, completion, doctor, configs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import typer

from tests.helpers import invoke, no_gpu, run_cli
from whisperft import __version__
from whisperft.cli import app
from whisperft.config import find_config, load_config, shipped_configs

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]  # every registered command


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"whisperft {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    r = invoke(command, "--help")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert re.search(rf"Examples?: whisperft {command}\b", text), text


def test_shell_completion_script() -> None:
    # Typer detects the shell from the parent processes (shellingham): run it from bash, which stays the
    # parent (a command before `exit` is not exec'd in its place), whatever shell runs the tests
    r = run_cli("--show-completion", wrap=("bash", "-c", '"$@"; exit $?', "bash"))
    assert r.returncode == 0 and "_whisperft_completion" in r.stdout and "complete " in r.stdout
    # the script's protocol: bash asks the program for candidates through these variables
    env = {**os.environ, "_WHISPERFT_COMPLETE": "complete_bash", "COMP_WORDS": "whisperft tra", "COMP_CWORD": "1"}
    exe = Path(sys.executable).with_name("whisperft")
    out = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert "train" in out.stdout.split() and "transcribe" in out.stdout.split()


@no_gpu
def test_doctor_on_a_machine_without_gpu() -> None:
    r = run_cli("doctor")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    for needle in ("torch", "no CUDA device", "ffmpeg", "espeak-ng", "GB free", "bundled:base", "faster-whisper"):
        assert needle in text, needle
    assert "offline mode" in text  # the suite runs with HF_HUB_OFFLINE=1: no request is made


def test_doctor_reports_an_unreachable_hub_quickly() -> None:
    from whisperft.doctor import hub_check

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update({**env, "HF_ENDPOINT": "http://127.0.0.1:9"})  # the discard port: nothing listens
    try:
        t0 = time.perf_counter()
        check = hub_check(timeout=2.0)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert check.status == "warn" and "unreachable" in check.detail and "127.0.0.1:9" in check.detail
    assert time.perf_counter() - t0 < 5


def test_configs_lists_every_shipped_config() -> None:
    r = run_cli("configs")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == list(shipped_configs())
    recipe = next(ln for ln in lines if ln.startswith("small-1000"))
    assert "1000 steps" in recipe and "lr 1e-05" in recipe and "batch 16x1" in recipe


def test_a_shipped_config_is_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = shipped_configs()
    assert (ROOT / "configs").resolve() == shipped["tiny"].parent  # the repository's configs/ is the package's
    monkeypatch.chdir(tmp_path)  # a pip user's folder, without the repository's configs/
    for arg in ("small-1000", "small-1000.yaml", "configs/small-1000.yaml"):
        assert find_config(arg) == shipped["small-1000"]
    assert find_config("elsewhere/small-1000.yaml") == Path("elsewhere/small-1000.yaml")  # only configs/ maps
    own = tmp_path / "small-1000.yaml"
    own.write_text("model: tiny\nlanguage: sv\n")
    assert find_config(own) == own  # a user's file wins over the shipped one
    assert load_config(find_config("small-1000")).train.max_steps == 1000
    r = run_cli("train", "no-such-config")
    assert r.returncode == 2 and "config file not found" in r.stderr and "small-1000" in r.stderr


@pytest.mark.slow
def test_the_wheel_ships_the_configs(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    r = subprocess.run([*cmd, str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(tmp_path.glob("whisperft-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"whisperft/configs/{n}.yaml" for n in shipped_configs()} <= set(names)
