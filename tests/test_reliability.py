"""Crashes, locks, non-finite losses and unsafe weights: nothing is lost beyond the last checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from tests.helpers import run_cli, train_config

pytestmark = pytest.mark.slow


def _cfg(path: Path, model: Path, store: Path, out: Path, **train: object) -> Path:
    return train_config(path, model, store, out, **train)


def _popen(cfg: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("whisperft")
    return subprocess.Popen([str(exe), "train", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.002)


def test_kill_9_during_steps_and_checkpoints_then_resume(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    kw = {"max_steps": 12, "save_steps": 3, "save_total_limit": 10}
    straight = _cfg(tmp_path / "a.yaml", tiny_model, store, tmp_path / "a", **kw)
    assert run_cli("train", str(straight)).returncode == 0

    cfg = _cfg(tmp_path / "b.yaml", tiny_model, store, tmp_path / "b", **kw)
    ckpts = tmp_path / "b" / "checkpoints"
    # 1) kill -9 in the middle of training steps, right after a checkpoint landed
    proc = _popen(cfg)
    _wait_for(ckpts / "step-0000003", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # 2) kill -9 while a checkpoint is being written (its temp folder exists, the marker does not)
    proc = _popen(cfg)
    _wait_for(ckpts / ".tmp-step-0000006", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # and a checkpoint folder that lost its completion marker must never be picked
    if (ckpts / "step-0000009").exists():
        (ckpts / "step-0000009" / "_COMPLETE").unlink()
    shutil.copytree(ckpts / "step-0000003", ckpts / "step-0000010")
    (ckpts / "step-0000010" / "_COMPLETE").unlink()
    (ckpts / "step-0000010" / "model.safetensors").write_bytes(b"half written")

    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr
    a = load_file(tmp_path / "a" / "checkpoints" / "step-0000012" / "model.safetensors")
    b = load_file(ckpts / "step-0000012" / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    records = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 12
    # the steps trained again after each kill are logged once: the log is the resumed checkpoint's history
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == list(range(1, 13)), steps


def test_second_run_on_the_same_folder_is_refused(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    cfg = _cfg(tmp_path / "c.yaml", tiny_model, store, tmp_path / "c", max_steps=10_000, save_steps=10_000,
               mixed_precision="fp16")  # fmt: skip
    first = _popen(cfg)
    _wait_for(tmp_path / "c" / "train_log.jsonl", first)
    second = run_cli("train", str(cfg))
    assert second.returncode == 1
    assert "in use by another run" in second.stderr and "Traceback" not in second.stderr
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 1 and "interrupted at step" in err
    assert "fp16 needs a CUDA GPU" in err  # fp16 on a CPU: a clear warning, then fp32


def test_non_finite_losses_stop_the_run_clearly(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    bad = tmp_path / "nan-store"
    shutil.copytree(store, bad)
    frames = bad / "train" / "frames.f16"
    frames.write_bytes(np.full(frames.stat().st_size // 2, np.nan, dtype=np.float16).tobytes())
    cfg = _cfg(tmp_path / "n.yaml", tiny_model, bad, tmp_path / "n", max_steps=20, save_steps=5, max_bad_steps=3)
    r = run_cli("train", str(cfg))
    assert r.returncode == 1
    assert "3 non-finite losses in a row" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "n" / "final").exists()


def test_pickle_weights_are_refused_unless_trusted(tmp_path: Path, tiny_model: Path, wavs: list) -> None:
    from transformers import WhisperForConditionalGeneration

    folder = tmp_path / "pickled"
    import torch

    model = WhisperForConditionalGeneration.from_pretrained(tiny_model)
    folder.mkdir()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # an old-style pickle checkpoint
    for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "processor_config.json"):  # fmt: skip
        shutil.copy(tiny_model / f, folder / f)
    assert list(folder.glob("*.bin")) and not list(folder.glob("*.safetensors"))
    r = run_cli("transcribe", str(wavs[0][0]), "--model", str(folder), "--lang", "sv")
    assert r.returncode == 2 and "pickle" in r.stderr
    r = run_cli("transcribe", str(wavs[0][0]), "--model", str(folder), "--lang", "sv", "--trust-pickle",
                "--no-timestamps")  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_gradient_checkpointing_and_early_stopping(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    cfg = _cfg(tmp_path / "e.yaml", tiny_model, store, tmp_path / "e", max_steps=50, eval_steps=1, save_steps=50,
               learning_rate=1e-12, warmup_steps=0, gradient_checkpointing=True, early_stopping_patience=2)  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "e" / "final" / "metrics.json").read_text())
    # the weights barely move, so WER cannot improve: two evaluations without improvement stop the run
    assert metrics["stopped_early"] is True and metrics["steps"] == 3 and metrics["best_step"] == 1
    assert metrics["final_from"] == "best (step 1)"


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 2 MB filesystem (tmpfs), so 'disk full' is the kernel's answer, not a mock."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        # CI runs as root, where this must work; only a developer's unprivileged run may lack it
        if os.geteuid() == 0:
            pytest.fail(f"mount -t tmpfs failed as root: {r.stderr.strip()}")
        pytest.skip("mounting a tmpfs needs root; CI runs this test as root")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_is_refused_before_any_work(
    small_disk: Path, tmp_path: Path, cv_folder: Path, store: Path, tiny_model: Path
) -> None:
    r = run_cli("prepare", "--lang", "sv", "--source", str(cv_folder), "--model", str(tiny_model),
                "--out", str(small_disk / "store"))  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "not enough free disk space for the feature store" in r.stderr
    cfg = _cfg(tmp_path / "t.yaml", tiny_model, store, small_disk / "run", max_steps=2)
    r = run_cli("train", str(cfg))
    assert r.returncode == 1 and "not enough free disk space for checkpoints" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert list(small_disk.iterdir()) in ([], [small_disk / "run"])  # nothing but the lock's folder


def test_a_time_budget_stops_saves_and_continues(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    """train.time_budget: the run stops in time with a checkpoint and a usable final/, and the same
    command continues from there."""
    budget = 12.0
    cfg = _cfg(tmp_path / "t.yaml", tiny_model, store, tmp_path / "t", max_steps=100_000, save_steps=100_000,
               eval_steps=10, time_budget=f"{budget:g}s")  # fmt: skip
    t0 = time.perf_counter()
    first = run_cli("train", str(cfg))
    wall = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr
    assert "time_budget 12s used up at step" in " ".join(first.stdout.split())
    assert "Run the same command again to continue" in " ".join(first.stdout.split())
    # the budget counts from the start of training; the process also imports torch and exits
    assert wall < budget + 8, wall
    final = tmp_path / "t" / "final"
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["stopped_by_time_budget"] and (final / "_COMPLETE").is_file()
    steps = metrics["steps"]
    assert 10 <= steps < 100_000
    assert (tmp_path / "t" / "checkpoints" / f"step-{steps:07d}").is_dir()
    again = run_cli("train", str(cfg))
    assert again.returncode == 0, again.stderr
    assert json.loads((final / "metrics.json").read_text())["steps"] > steps  # continued, not restarted
    r = run_cli("train", str(cfg), "train.time_budget=soon")
    assert r.returncode == 2 and "train.time_budget: expected a duration like 3h30m" in r.stderr
