"""CSV, TSV and JSONL tables (manifests, Common Voice's TSVs, audiofolder metadata, the recorder's table):
the file's text decoded, records split with RFC 4180 quoting only where it is well formed, and
(columns, [(line number, row)]) out. What the columns mean is the sources' business (``data/sources``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from whisperft.errors import UsageError

# ``whisperft label`` writes this beside its manifest.csv: the teacher, the filter, what was kept. prepare
# copies it into the store's metadata, and the model card says how much of the data was pseudo-labelled.
LABEL_INFO, LABEL_MANIFEST = "label.json", "manifest.csv"


def read_text_file(path: Path) -> str:
    """The file's text: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8 (a BOM dropped)."""
    raw = path.read_bytes()
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is not UTF-8 text; re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv)"
        ) from None


def _lines(text: str) -> list[str]:
    """Physical lines with their endings (``\n``, ``\r\n`` or ``\r``), as the csv module reads them."""
    return io.StringIO(text, newline="").readlines()


def _literal(line: str, delimiter: str) -> list[str]:
    """A line split on the delimiter with quotes kept as written (Common Voice's TSV, IANA TSV)."""
    return line.rstrip("\r\n").split(delimiter)


def table_records(text: str, delimiter: str, quoted: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record of a delimited table, header included.

    ``quoted=False`` reads every line literally: one record per line, a ``"`` is a character like any
    other (Common Voice's TSVs are written this way). ``quoted=True`` reads RFC 4180 quoting, but only
    where it is well formed: a quote that is never closed, or is followed by text before the next
    delimiter, is taken literally for that line alone, so ``"Hej sa hon.`` cannot swallow the rows
    after it, and ``"Tack" sa hon.`` keeps its quotes. A quoted field may span lines when the record
    it closes has as many fields as the header.
    """
    lines = _lines(text)
    width: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        fields, used = _literal(line, delimiter), 1
        if quoted and '"' in line:
            fields, used = _quoted_record(lines, i, delimiter, width) or (fields, 1)
        yield i + 1, fields
        width = len(fields) if width is None else width
        i += used


def _quoted_record(lines: list[str], i: int, delimiter: str, width: int | None) -> tuple[list[str], int] | None:
    """The RFC 4180 record starting at line ``i`` and the lines it spans; None when it is not well formed."""
    reader = csv.reader(itertools.islice(lines, i, None), delimiter=delimiter, strict=True)
    try:
        fields = next(reader)
    except (csv.Error, StopIteration):
        return None
    if reader.line_num > 1 and width is not None and len(fields) != width:
        return None
    return fields, reader.line_num


def read_table(path: Path, quoted: bool = True) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """Read a CSV/TSV/JSONL table into (columns, [(line_number, row)]); one entry per non-blank record.

    ``quoted=False`` reads a TSV literally (see ``table_records``). A row with fewer fields than the
    header has None for the missing columns; extra fields are dropped.
    """
    text = read_text_file(path)
    if path.suffix.lower() == ".jsonl":
        return _read_jsonl(text)
    return parse_table(text, "\t" if path.suffix.lower() == ".tsv" else ",", quoted)


def parse_table(text: str, delimiter: str, quoted: bool = True) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(columns, [(line_number, row)]) of a delimited table's text; see ``read_table``."""
    records = table_records(text, delimiter, quoted)
    header = next(records, None)
    columns = [c.strip() for c in header[1]] if header else []
    out = []
    for line, fields in records:
        out.append((line, {c: (fields[k] if k < len(fields) else None) for k, c in enumerate(columns)}))
    return columns, out


def _read_jsonl(text: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((n, {"__error__": f"invalid JSON: {exc.msg}"}))
            continue
        if not isinstance(obj, dict):
            rows.append((n, {"__error__": "line is not a JSON object"}))
            continue
        columns.update(dict.fromkeys(obj))
        rows.append((n, obj))
    return list(columns), rows


def pseudo_label_info(source: str | None) -> dict[str, Any] | None:
    """``label.json`` of a ``whisperft label`` folder when ``source`` is that folder's ``manifest.csv`` (or
    the folder), else None. Another table in the folder (a hand-made, unfiltered one) is not the filtered
    manifest the file describes, so it gets None too."""
    if not source:  # a Hub dataset: no local folder
        return None
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    if (not path.is_dir() and path.name != LABEL_MANIFEST) or not (folder / LABEL_INFO).is_file():
        return None
    try:
        info = json.loads((folder / LABEL_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
