"""Crash-safe file system helpers: atomic writes, completion markers, run locks, disk checks."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from whisperft.errors import WhisperftError

COMPLETE_MARKER = "_COMPLETE"


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def mark_complete(folder: Path, info: dict[str, Any] | None = None) -> None:
    """Write the completion marker: the last thing written into a folder."""
    atomic_write_json(Path(folder) / COMPLETE_MARKER, info or {})


def is_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE_MARKER).is_file()


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside ``final``; on success it is renamed into place.

    A crash leaves only a hidden ``.tmp-*`` folder, never a half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".tmp-{final.name}-"))
    tmp.chmod(0o755)
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".old-{final.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_free_space(folder: Path, need_bytes: int, what: str) -> None:
    """Refuse to start a write that cannot fit on the disk."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need_bytes:
        raise WhisperftError(
            f"not enough free disk space for {what} in {folder}: need about {need_bytes / 1e9:.2f} GB, "
            f"have {free / 1e9:.2f} GB"
        )


@contextmanager
def waiting_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``, waiting while another process holds it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


class RunLock:
    """An exclusive lock on an output folder, so two runs never write into one folder.

    Uses ``fcntl.flock`` on ``.lock``: the kernel releases it when the process dies,
    so a crashed run never leaves a stale lock behind.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fh: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the run's life
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise WhisperftError(
                f"{self.path.parent} is in use by another run ({holder}); wait for it or choose another output_dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def cache_dir() -> Path:
    """whisperft's cache: ``$WHISPERFT_CACHE``, else ``$XDG_CACHE_HOME/whisperft``, else ``~/.cache/whisperft``."""
    if os.environ.get("WHISPERFT_CACHE"):
        return Path(os.environ["WHISPERFT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "whisperft"


def is_ct2_folder(path: str | Path) -> bool:
    """A CTranslate2 Whisper folder: ``model.bin`` beside a config.json that is not a transformers config."""
    p = Path(path)
    if not (p / "model.bin").is_file():
        return False
    try:
        cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return "model_type" not in cfg
