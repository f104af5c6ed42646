"""Crash-safe writes: temp + rename, completion markers, locks, disk preflight."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperft.errors import WhisperftError
from whisperft.io import RunLock, atomic_write_json, check_free_space, is_complete, mark_complete, staged_dir


def test_staged_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "store") as tmp:
        (tmp / "half.bin").write_bytes(b"x" * 100)
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_staged_dir_replaces_atomically(tmp_path: Path) -> None:
    for content in (b"old", b"new"):
        with staged_dir(tmp_path / "m") as tmp:
            (tmp / "w").write_bytes(content)
            mark_complete(tmp)
    assert (tmp_path / "m" / "w").read_bytes() == b"new" and is_complete(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_atomic_write_keeps_the_old_file_until_the_new_one_is_whole(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"wer": 0.5})

    class Boom:
        def __repr__(self) -> str:
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write_json(target, {"wer": Boom()})
    assert target.read_text().strip().endswith("}") and '"wer": 0.5' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_disk_preflight_refuses_what_cannot_fit(tmp_path: Path) -> None:
    check_free_space(tmp_path, 1024, "a checkpoint")
    with pytest.raises(WhisperftError, match="not enough free disk space for a checkpoint"):
        check_free_space(tmp_path / "not" / "yet", 10**18, "a checkpoint")


def test_run_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(WhisperftError, match="in use by another run"):
        RunLock(tmp_path).acquire()
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text().startswith("pid ")
