"""The registry of speech data source kinds: ``--source`` resolved to a Source that yields Rows per split.

Supported sources (their tables are read by ``data/tables``):

- a Common Voice release folder (``clips/`` + ``train.tsv``/``dev.tsv``/``test.tsv``), or its ``.tar.gz``
- a manifest ``.csv``/``.tsv``/``.jsonl`` (optional ``split`` column), paths relative to the manifest
- an audiofolder with ``metadata.csv`` (optionally per-split subfolders)
- a folder written by ``datasets.save_to_disk``
- a Hub dataset ``hub:NAME[:CONFIG]`` (script datasets through ``refs/convert/parquet``)
"""

from __future__ import annotations

import logging
import os
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperft.data.tables import parse_table, read_table
from whisperft.errors import UsageError, WhisperftError
from whisperft.hub import require_hub
from whisperft.languages import Language

logger = logging.getLogger("whisperft")

AUDIO_COLUMNS = ("audio", "path", "file", "file_name", "filename")
TEXT_COLUMNS = ("text", "sentence", "raw_transcription", "transcription", "transcript")
SPLIT_ALIASES = {"train": "train", "dev": "validation", "validation": "validation", "valid": "validation",
                 "val": "validation", "test": "test"}  # fmt: skip
CV_SPLITS = {"train.tsv": "train", "dev.tsv": "validation", "test.tsv": "test"}


@dataclass
class Row:
    """One utterance as read from a source, before decoding."""

    id: str
    audio: str | bytes | Any | None  # a path, encoded bytes, 16 kHz samples (a cut), or None: no audio
    text: str | None
    origin: str  # where it came from, for error messages: "train.tsv:12"
    problem: str | None = None  # set when the row is already known to be bad
    detail: str = ""


@dataclass
class Source:
    """Splits of rows, plus a description for the report."""

    description: str
    splits: dict[str, Callable[[], Iterable[Row]]]


def _pick(columns: Iterable[str], candidates: tuple[str, ...], what: str, path: Path) -> str:
    lowered = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    raise UsageError(
        f"{path}: no {what} column; expected one of {', '.join(candidates)}, found {', '.join(columns) or 'none'}"
    )


def safe_join(base: Path, rel: str) -> Path | None:
    """Join a manifest path onto its folder; None when a relative path escapes the folder via '..'."""
    p = Path(rel)
    if p.is_absolute():
        return p
    root = os.path.normpath(base)
    joined = os.path.normpath(os.path.join(root, p))
    if joined != root and not joined.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return Path(joined)


def _checked(origin: str, rec: dict[str, Any], acol: str, tcol: str) -> Row:
    """A Row from one table record, its audio path still relative; ``problem`` set when the record is bad."""
    if "__error__" in rec:
        return Row(origin, None, None, origin, "bad_row", rec["__error__"])
    rel, text = rec.get(acol), rec.get(tcol)
    if rel is None or text is None:
        missing = acol if rel is None else tcol
        return Row(origin, None, None, origin, "bad_row", f"missing value for column {missing!r}")
    rel = str(rel).strip()
    if not rel:
        return Row(origin, None, str(text), origin, "missing_file", "empty audio path")
    return Row(rel, rel, str(text), origin)


def _table_rows(
    path: Path, audio_base: Path, rows: list[tuple[int, dict[str, Any]]], acol: str, tcol: str
) -> Iterator[Row]:
    """One Row per record; audio paths joined onto ``audio_base`` (made absolute, so that a source
    given as ``.``, ``./m.csv`` or ``../data`` keeps the same rows as its absolute path)."""
    base = Path(os.path.abspath(audio_base))
    for line, rec in rows:
        row = _checked(f"{path.name}:{line}", rec, acol, tcol)
        if row.problem is None:
            full = safe_join(base, str(row.audio))
            if full is None:
                row.problem, row.detail, row.audio = "unsafe_path", f"{row.id!r} escapes {audio_base}", None
            else:
                row.audio = str(full)
        yield row


def manifest_source(path: Path) -> Source:
    columns, rows = read_table(path)
    acol = _pick(columns, AUDIO_COLUMNS, "audio", path)
    tcol = _pick(columns, TEXT_COLUMNS, "text", path)
    scol = next((c for c in columns if c.lower() == "split"), None)
    base = path.parent
    if scol is None:
        return Source(f"manifest {path}", {"train": lambda: _table_rows(path, base, rows, acol, tcol)})
    by_split: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line, rec in rows:
        name = SPLIT_ALIASES.get(str(rec.get(scol, "")).strip().lower())
        if name is None:
            raise UsageError(f"{path}:{line}: unknown split {rec.get(scol)!r}; use train, validation or test")
        by_split.setdefault(name, []).append((line, rec))
    return Source(
        f"manifest {path}",
        {name: (lambda r=r: _table_rows(path, base, r, acol, tcol)) for name, r in by_split.items()},
    )


def common_voice_source(folder: Path) -> Source:
    splits = {}
    for fname, name in CV_SPLITS.items():
        tsv = folder / fname
        if tsv.is_file():
            columns, rows = read_table(tsv, quoted=False)  # Common Voice's TSVs have no quoting
            acol = _pick(columns, ("path",), "path", tsv)
            tcol = _pick(columns, ("sentence",), "sentence", tsv)
            splits[name] = lambda t=tsv, r=rows, a=acol, c=tcol: _table_rows(t, folder / "clips", r, a, c)
    return Source(f"Common Voice folder {folder}", splits)


def common_voice_tar_source(archive: Path) -> Source:
    """Read a Common Voice release tarball in place, without extracting it."""
    tables: dict[str, tuple[str, list[str], list[tuple[int, dict[str, Any]]]]] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = Path(member.name).name
                if member.isfile() and base in CV_SPLITS and "clips" not in Path(member.name).parts:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    columns, rows = parse_table(fh.read().decode("utf-8-sig"), "\t", quoted=False)
                    for col in ("path", "sentence"):
                        _pick(columns, (col,), col, Path(f"{archive.name}:{member.name}"))
                    tables[CV_SPLITS[base]] = (posixpath.dirname(member.name) or ".", columns, rows)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise WhisperftError(f"cannot read {archive}: {exc}") from None
    if not tables:
        raise UsageError(f"{archive}: no train.tsv/dev.tsv/test.tsv inside; is this a Common Voice release?")

    def rows_for(split: str) -> Iterator[Row]:
        prefix, _columns, rows = tables[split]
        wanted: dict[str, list[Row]] = {}
        for line, rec in rows:
            row = _checked(f"{split}.tsv:{line}", rec, "path", "sentence")
            if row.problem is not None:
                yield row
                continue
            wanted.setdefault(posixpath.normpath(f"{prefix}/clips/{row.audio}"), []).append(row)
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                hits = wanted.pop(posixpath.normpath(member.name), None) if member.isfile() else None
                if hits:
                    fh = tar.extractfile(member)
                    data = fh.read() if fh else b""
                    for row in hits:
                        row.audio = data
                        yield row
        for hits in wanted.values():
            for row in hits:
                row.problem, row.detail, row.audio = "missing_file", f"{row.id} is not in {archive.name}", None
                yield row

    return Source(f"Common Voice archive {archive}", {s: (lambda s=s: rows_for(s)) for s in tables})


def audiofolder_source(folder: Path) -> Source:
    splits = {}
    subdirs = [d for d in sorted(folder.iterdir()) if d.is_dir() and (d / "metadata.csv").is_file()]
    if (folder / "metadata.csv").is_file():
        subdirs = [folder]
    for d in subdirs:
        meta = d / "metadata.csv"
        columns, rows = read_table(meta)
        acol = _pick(columns, ("file_name", *AUDIO_COLUMNS), "file_name", meta)
        tcol = _pick(columns, TEXT_COLUMNS, "text", meta)
        name = "train" if d == folder else SPLIT_ALIASES.get(d.name.lower(), d.name)
        splits[name] = lambda m=meta, d=d, r=rows, a=acol, t=tcol: _table_rows(m, d, r, a, t)
    return Source(f"audiofolder {folder}", splits)


def _hf_rows(ds: Any, name: str) -> Iterator[Row]:
    from datasets import Audio  # deferred: datasets is slow to import; only Hub/disk sources need it

    columns = list(ds.column_names or [])
    acol = next((c for c in columns if c.lower() == "audio"), None) or _pick(
        columns, AUDIO_COLUMNS, "audio", Path(name)
    )
    tcol = _pick(columns, TEXT_COLUMNS, "text", Path(name))
    if isinstance((ds.features or {}).get(acol), Audio):
        ds = ds.cast_column(acol, Audio(decode=False))
    for i, rec in enumerate(ds):
        audio = rec[acol]
        origin = f"{name}[{i}]"
        if isinstance(audio, dict):
            data = audio.get("bytes") or audio.get("path")
            ident = audio.get("path") or origin
        else:
            data, ident = audio, str(audio) if audio else origin
        if not data:
            yield Row(str(rec.get("id", ident)), None, rec.get(tcol), origin, "missing_file", "the row has no audio")
            continue
        yield Row(str(rec.get("id", ident)), data, rec.get(tcol), origin)


def disk_source(folder: Path) -> Source:
    from datasets import Dataset, DatasetDict, load_from_disk  # deferred: slow to import (see _hf_rows)

    try:
        ds = load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(f"cannot load {folder} with datasets.load_from_disk: {exc}") from None
    if isinstance(ds, Dataset):
        return Source(f"datasets folder {folder}", {"train": lambda: _hf_rows(ds, folder.name)})
    assert isinstance(ds, DatasetDict)
    return Source(
        f"datasets folder {folder}",
        {SPLIT_ALIASES.get(k, k): (lambda k=k: _hf_rows(ds[k], f"{folder.name}/{k}")) for k in ds},
    )


def hub_source(name: str, config: str | None, parquet: bool = False) -> Source:
    """A Hub dataset, streamed. Script datasets (like google/fleurs) load through the parquet conversion."""
    import datasets  # deferred: slow to import (see _hf_rows)

    kwargs: dict[str, Any] = {"streaming": True}
    if parquet:
        kwargs["revision"] = "refs/convert/parquet"
        if config:
            kwargs["data_dir"] = config
    elif config:
        kwargs["name"] = config
    require_hub(f"Hub dataset {name}", "pass a local folder or manifest as --source")  # one line, no retries
    token = os.environ.get("HF_TOKEN")  # read from the environment only; never logged or stored
    try:
        dsd = datasets.load_dataset(name, token=token, **kwargs)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "mozilla-foundation/common_voice" in name:
            msg += (
                " (Common Voice left the Hugging Face Hub in October 2025: download the release from the "
                "Mozilla Data Collective and pass its folder or .tar.gz as --source)"
            )
        raise WhisperftError(f"cannot load Hub dataset {name}: {msg}") from None
    label = f"hub:{name}" + (f":{config}" if config else "")
    return Source(label, {SPLIT_ALIASES.get(k, k): (lambda k=k: _hf_rows(dsd[k], f"{label}/{k}")) for k in dsd})


def open_source(source: str | None, language: Language) -> Source:
    """Resolve ``--source``; with none, FLEURS for the language through the Hub's parquet conversion."""
    if source is None:
        if language.fleurs is None:
            raise UsageError(f"FLEURS has no {language.name}; pass --source (a Common Voice folder or a manifest)")
        logger.info("no --source given: using google/fleurs %s (parquet conversion) from the Hub", language.fleurs)
        return hub_source("google/fleurs", language.fleurs, parquet=True)
    if source.startswith("hub:"):
        parts = source[4:].split(":")
        if not parts[0]:
            raise UsageError("--source hub:NAME[:CONFIG] needs a dataset name")
        name = parts[0]
        return hub_source(name, parts[1] if len(parts) > 1 else None, parquet=name == "google/fleurs")
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"--source {source}: no such file or folder")
    if path.is_file():
        if path.name.endswith((".tar.gz", ".tgz", ".tar")):
            return common_voice_tar_source(path)
        if path.suffix.lower() in (".csv", ".tsv", ".jsonl"):
            return manifest_source(path)
        raise UsageError(f"--source {source}: expected a folder, a .csv/.tsv/.jsonl manifest or a .tar.gz")
    if any((path / f).is_file() for f in CV_SPLITS) and (path / "clips").is_dir():
        return common_voice_source(path)
    if (path / "metadata.csv").is_file() or any(path.glob("*/metadata.csv")):
        return audiofolder_source(path)
    if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
        return disk_source(path)
    raise UsageError(
        f"--source {source}: not a Common Voice folder (clips/ + train.tsv), an audiofolder (metadata.csv), "
        "a datasets.save_to_disk folder, or long recordings beside their text (chapter01.mp3 + chapter01.txt)"
    )
