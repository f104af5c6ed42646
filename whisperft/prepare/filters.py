"""Which source rows prepare keeps: duplicates, leaks between splits, and implausible speaking rates.

Evaluation splits are read first (test, then validation, then the rest), so a clip that a
folder lists in both test and train stays in test, and the training copy is dropped as
``leaked_into_eval``: a test set never changes with what else is in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisperft.data.sources import Row
from whisperft.text import MAX_CHARS_PER_SECOND, MIN_CHARS_PER_SECOND, clean_text, speech_chars

EVAL_SPLITS = ("test", "validation")  # read before every other split


def split_order(names: list[str]) -> list[str]:
    """Evaluation splits first, the others in their source order."""
    first = [s for s in EVAL_SPLITS if s in names]
    return first + [s for s in names if s not in first]


@dataclass(frozen=True)
class RateBounds:
    """Plausible characters (letters and digits) per second of audio for read speech; see text.py."""

    min_chars_per_second: float = MIN_CHARS_PER_SECOND
    max_chars_per_second: float = MAX_CHARS_PER_SECOND

    def problem(self, text: str, seconds: float) -> str | None:
        """Why ``text`` cannot be what was said in ``seconds`` of audio; None when it can."""
        chars = speech_chars(text)
        rate = chars / seconds if seconds > 0 else float("inf")
        if rate > self.max_chars_per_second:
            return f"{chars} characters in {seconds:.2f} s = {rate:.1f}/s > {self.max_chars_per_second:g}/s"
        if rate < self.min_chars_per_second:
            return f"{chars} characters in {seconds:.2f} s = {rate:.2f}/s < {self.min_chars_per_second:g}/s"
        return None


class SeenRows:
    """Marks repeats: the same audio and text twice in a split is a ``duplicate``; audio already
    used by an evaluation split read earlier is ``leaked_into_eval``."""

    def __init__(self) -> None:
        self.first_split: dict[str, str] = {}  # audio key -> the split that first listed it
        self.pairs: dict[tuple[str, str, str], str] = {}  # (split, audio key, text) -> first row id
        self.leaked: dict[str, int] = {}  # per split: rows dropped because an evaluation split has them

    def check(self, split: str, row: Row) -> None:
        if row.problem is not None:
            return
        audio = row.audio if isinstance(row.audio, str) else row.id
        owner = self.first_split.setdefault(audio, split)
        if owner != split and owner in EVAL_SPLITS:
            row.problem, row.detail = "leaked_into_eval", f"the same audio is in the {owner} split; kept there only"
            self.leaked[split] = self.leaked.get(split, 0) + 1
            return
        key = (split, audio, clean_text(row.text))
        if key in self.pairs:
            row.problem, row.detail = "duplicate", f"same audio and text as an earlier row ({self.pairs[key]})"
            return
        self.pairs[key] = row.id
