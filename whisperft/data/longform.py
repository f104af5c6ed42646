"""Long recordings with their text (audiobook chapters, lectures, sermons): the pairs, and the text's units.

A recording and its text are a pair: ``chapter01.mp3`` beside ``chapter01.txt`` in a folder (train),
or in its ``train/``, ``dev/`` or ``test/`` subfolders; or the rows of a manifest with an ``audio`` and a
``text_file`` column (and optionally ``split``), paths relative to the manifest. prepare cuts each pair
into clips (``data.align``, run by ``prepare.longform``); this module only finds the pairs and splits a
text into the units clips are made of: sentences, or a heading that stands on its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from whisperft.audio import AUDIO_SUFFIXES
from whisperft.data.sources import SPLIT_ALIASES
from whisperft.data.tables import parse_table, read_table, read_text_file
from whisperft.errors import UsageError
from whisperft.text import normalize_text

TEXT_FILE_COLUMNS = ("text_file", "text_path", "transcript_file")

# A sentence ends at . ! ? … or the full stops of other scripts (Devanagari danda ।, Arabic question mark ؟,
# Armenian ։, Ethiopic ።) with any closing quotes or brackets, before a space that is not followed by a
# lowercase letter ("t.ex. när" stays whole); CJK 。！？ end one with or without a space. A full stop after
# a single letter (an initial, "J. R. R."), a number of one or two digits (a German or Nordic ordinal,
# "am 3. Oktober") or a title ("Mr.", "Dr.", "St.") ends nothing; other abbreviations before a capital
# still split, and align joins the parts again where no pause parts them.
_SENTENCE_END = re.compile(r"[.!?…।؟։።][\"'”’»)\]]*(?=\s)|[。！？][」』”）]*")
_NOT_AN_END = re.compile(r"(?:^|\W)(?:[^\W\d_]|\d{1,2}|Mr|Mrs|Ms|Dr|St|Prof|Sr|Jr|Mt|Hr|Fr|Nr|No|Vol|pp?|ch|cf|vs)\.$")
_LINE_END = re.compile(r"[.!?…。！？।؟։።][\"'”’»)\]」』]*$")


@dataclass(frozen=True)
class Recording:
    """One long recording and its text file; ``split`` is train, validation or test."""

    id: str
    audio: Path
    text: Path
    split: str
    origin: str  # where it was listed, for messages: "book/" or "book.csv:3"


@dataclass(frozen=True)
class Unit:
    """A piece of the text a clip is made of: a sentence, or a line that stands alone (a heading).

    ``paragraph`` counts the text's paragraphs from 0; ``index`` is the unit's place in the text."""

    index: int
    paragraph: int
    text: str


def find_recordings(source: str | None) -> list[Recording] | None:
    """The pairs when ``source`` (prepare's ``--source``) is long recordings with their text, else None: a
    folder that is neither Common Voice nor an audiofolder and has pairs, or a manifest with a
    ``text_file`` column. Raises UsageError naming the row of a manifest whose file is missing."""
    if source is None or source.startswith("hub:"):
        return None
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "clips").is_dir() or (path / "metadata.csv").is_file() or any(path.glob("*/metadata.csv")):
            return None
        return _folder_pairs(path) or None
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".jsonl"):
        return _manifest_pairs(path) if any(c.lower() in TEXT_FILE_COLUMNS for c in _header(path)) else None
    return None


def _header(path: Path) -> list[str]:
    """A manifest's columns, from its first record only: a manifest of clips is then read once, by sources."""
    first = next((line for line in read_text_file(path).splitlines() if line.strip()), "")
    if path.suffix.lower() == ".jsonl":
        try:
            record = json.loads(first)
        except ValueError:
            return []
        return list(record) if isinstance(record, dict) else []
    return parse_table(first, "\t" if path.suffix.lower() == ".tsv" else ",")[0]


def _folder_pairs(folder: Path) -> list[Recording]:
    out = []
    subfolders = [d for d in sorted(folder.iterdir()) if d.is_dir() and d.name.lower() in SPLIT_ALIASES]
    for d, split in [(folder, "train")] + [(d, SPLIT_ALIASES[d.name.lower()]) for d in subfolders]:
        for audio in sorted(p for p in d.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
            text = audio.with_suffix(".txt")
            if text.is_file():
                rel = audio.relative_to(folder).with_suffix("")
                out.append(Recording(rel.as_posix(), audio, text, split, f"{folder}/{rel.as_posix()}"))
    return _unique(out)


def _unique(pairs: list[Recording]) -> list[Recording]:
    """The pairs, each with an id of its own: ch01.mp3 and ch01.wav beside one ch01.txt keep their suffix."""
    stems = [r.id for r in pairs]
    return [r if stems.count(r.id) == 1 else replace(r, id=f"{r.id}{r.audio.suffix}") for r in pairs]


def _manifest_pairs(path: Path) -> list[Recording]:
    columns, rows = read_table(path)
    acol = next((c for c in columns if c.lower() in ("audio", "path", "file", "audio_file")), None)
    tcol = next((c for c in columns if c.lower() in TEXT_FILE_COLUMNS), None)
    if acol is None or tcol is None:
        raise UsageError(f"{path}: a manifest of long recordings needs an audio and a text_file column")
    scol = next((c for c in columns if c.lower() == "split"), None)
    out = []
    for line, rec in rows:
        origin = f"{path}:{line}"
        split = SPLIT_ALIASES.get(str(rec.get(scol) or "train").strip().lower()) if scol else "train"
        if split is None:
            raise UsageError(f"{origin}: unknown split {rec.get(scol)!r}; use train, validation or test")
        audio, text = (path.parent / str(rec.get(c) or "").strip() for c in (acol, tcol))
        for file in (audio, text):
            if not file.is_file():
                raise UsageError(f"{origin}: no such file {file}")
        out.append(Recording(Path(str(rec[acol])).with_suffix("").as_posix(), audio, text, split, origin))
    return _unique(out)


def _ends(text: str, at: int) -> bool:
    """Whether the sentence end found before ``at`` ends a sentence (see ``_SENTENCE_END``)."""
    return not text[at:].lstrip()[:1].islower() and not _NOT_AN_END.search(text[:at])


def read_units(path: Path) -> list[Unit]:
    """The units of a text file, in order (see ``split_units``)."""
    return split_units(read_text_file(path))


def split_units(text: str) -> list[Unit]:
    """Split a text into paragraphs, then sentences.

    Paragraphs are separated by blank lines, and the lines inside one are joined: hard-wrapped Project
    Gutenberg text reads as its sentences. A text without blank lines whose lines mostly end a sentence
    has one paragraph per line (as many e-texts are saved). A paragraph without a sentence end (a
    heading, "Kapitel tre") is one unit. Units with nothing to say ("* * *") are left out.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    ended = sum(bool(_LINE_END.search(line)) for line in lines)
    if len(blocks) <= 1 and ended * 2 > len(lines):
        blocks = lines
    units: list[Unit] = []
    for p, block in enumerate(blocks):
        joined = " ".join(block.split())
        cuts = [m.end() for m in _SENTENCE_END.finditer(joined) if _ends(joined, m.end())]
        for a, b in zip([0, *cuts], [*cuts, len(joined)], strict=True):
            if normalize_text(joined[a:b]):
                units.append(Unit(len(units), p, joined[a:b].strip()))
    return units
