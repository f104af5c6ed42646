"""Review of a ``whisperft label`` folder: its clips, least confident first, each accepted (its label as it is
or corrected) or dropped; both manifests rewritten atomically after each decision.

The Review tab of ``whisperft serve --review DIR`` is this module's page. A decision takes the folder's
lock for the moment of the write, so a review never interleaves with a ``label`` run writing the same
folder: while one runs, a decision is refused with one line, and nothing is lost.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from whisperft.errors import UsageError, WhisperftError
from whisperft.io import RunLock
from whisperft.label.run import COLUMNS, MANIFEST, REJECTED, REJECTED_COLUMNS, write_rows

ACCEPTED, CORRECTED, DROPPED = "accepted", "corrected", "dropped"  # the ``reviewed`` column


@dataclass
class Item:
    """One clip to review: its row (manifest or rejected), and whether the manifest holds it."""

    row: dict[str, str]
    kept: bool

    @property
    def confidence(self) -> float:
        """The label's confidence; 0 when the engine gave none (those come first)."""
        try:
            return float(self.row.get("confidence") or 0.0)
        except ValueError:
            return 0.0


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def queue(folder: Path) -> list[Item]:
    """The clips of ``folder`` not yet reviewed, least confident first: kept and rejected alike (a rejected
    label may be right), but not rows without a clip (an undecodable file). UsageError for a folder that
    ``label`` did not write."""
    if not (folder / MANIFEST).is_file():
        raise UsageError(f"--review {folder}: no {MANIFEST} there; make one with whisperft label ... --out {folder}")
    items = [Item(r, True) for r in _read(folder / MANIFEST)]
    items += [Item(r, False) for r in _read(folder / REJECTED) if r.get("audio")]
    return sorted((i for i in items if not i.row.get("reviewed")), key=lambda i: i.confidence)


def decide(folder: Path, audio: str, text: str | None) -> str:
    """Record one decision on the clip ``audio`` (its path in the manifests): ``text`` None drops it (to
    rejected.csv, reason ``dropped``); a text accepts it with that label (``accepted`` when unchanged, else
    ``corrected``). Both manifests are rewritten atomically, under the folder's lock. Returns the decision.
    Raises WhisperftError while ``label`` writes the folder, UsageError for a clip it does not list."""
    lock = RunLock(folder)
    try:
        lock.acquire()
    except WhisperftError:
        raise WhisperftError(f"{folder} is being written by whisperft label; decide again when it is done") from None
    try:
        kept, rejected = _read(folder / MANIFEST), _read(folder / REJECTED)
        found = [r for r in kept + rejected if r.get("audio") == audio]
        if not found:
            raise UsageError(f"{audio} is not a clip of {folder}")
        row = dict(found[0])
        kept = [r for r in kept if r.get("audio") != audio]
        rejected = [r for r in rejected if r.get("audio") != audio]
        if text is None:
            decision = DROPPED
            rejected.append({**row, "reviewed": decision, "reason": "dropped", "detail": "dropped in review"})
        else:
            label = " ".join(text.split())
            if not label:
                raise UsageError("an empty label: type what is said, or drop the clip")
            decision = ACCEPTED if label == row.get("text") else CORRECTED
            kept.append({**row, "text": label, "reviewed": decision})
        write_rows(folder / MANIFEST, kept, COLUMNS)
        write_rows(folder / REJECTED, rejected, REJECTED_COLUMNS)
        return decision
    finally:
        lock.release()
