"""A feature store somewhere else: ``hf://datasets/user/store``, ``s3://bucket/store``, ``gs://...``, any
fsspec URL. It is fetched once into the local cache, checked for completeness, and moved into
place atomically; later runs (and the other processes of a multi-GPU run) read the cached copy.

A store is complete when its ``_COMPLETE`` marker is there (``prepare`` writes it last, and
``push-store`` uploads it last), with every split it lists holding its own marker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import fsspec

from whisperft.errors import UsageError, WhisperftError
from whisperft.hub import require_hub
from whisperft.io import COMPLETE_MARKER, cache_dir, is_complete, staged_dir, waiting_lock

logger = logging.getLogger("whisperft")

URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
STORE_META = "store.json"


def is_url(location: str | Path) -> bool:
    return bool(URL.match(str(location)))


def cached_path(url: str) -> Path:
    """Where ``url`` lives locally: a readable name plus a hash of the whole URL."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").split("/")[-1])[:40] or "store"
    return cache_dir() / "stores" / f"{tail}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def local_store(location: str | Path) -> Path:
    """A local folder for a store given as a folder or an fsspec URL (fetched on first use)."""
    if not is_url(location):
        return Path(location)
    url = str(location).rstrip("/")
    if url.split("://", 1)[0] in ("file", "local"):  # cached by its absolute path: file://store from
        url = "file://" + os.path.abspath(fsspec.core.url_to_fs(url)[1])  # another folder is another store
    target = cached_path(url)
    if is_complete(target):
        return target
    with waiting_lock(target.parent / f".{target.name}.lock"):  # another process may be fetching it: wait
        if not is_complete(target):
            _fetch(url, target)
    return target


def _fetch(url: str, target: Path) -> None:
    if url.startswith("hf://"):
        require_hub(f"the store {url}", "pass a local store folder")  # one line now, not the client's retries
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"cannot open {url}: {exc}") from None
    try:
        if not fs.exists(f"{root}/{COMPLETE_MARKER}"):
            raise WhisperftError(
                f"{url} is not a complete feature store (no {COMPLETE_MARKER}); prepare it again or wait for its upload"
            )
        meta = json.loads(fs.cat_file(f"{root}/{STORE_META}"))
        files = [p for p in fs.find(root) if not Path(p).name.startswith(".")]
    except FileNotFoundError as exc:
        raise WhisperftError(f"{url}: missing {exc}") from None
    except (OSError, ValueError) as exc:
        raise WhisperftError(f"cannot read the store at {url}: {exc}") from None
    size = sum(int(fs.info(p).get("size") or 0) for p in files)
    free = shutil.disk_usage(target.parent).free
    if size > free:
        raise WhisperftError(f"{url} needs {size / 1e9:.2f} GB in {target.parent}, which has {free / 1e9:.2f} GB free")
    logger.info("fetching %s (%.1f MB) into %s", url, size / 1e6, target)
    with staged_dir(target) as tmp:
        for remote in files:
            rel = remote[len(root) :].lstrip("/")
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(tmp / rel))
        missing = [s for s in meta.get("splits", []) if not is_complete(tmp / s)]
        if missing or not is_complete(tmp):
            raise WhisperftError(f"{url} is incomplete: split(s) {', '.join(missing) or '?'} lack {COMPLETE_MARKER}")
