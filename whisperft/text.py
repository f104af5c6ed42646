"""Transcript text helpers: cleaning for storage, normalizing for scoring, counting spoken characters.

``normalize_text`` lowercases and drops punctuation and symbols but keeps combining
marks (Unicode category M), unlike Whisper's BasicTextNormalizer, which strips them
and so destroys words in Devanagari, Tamil, Thai and other scripts.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\ufeff]")

# Plausible speaking rates, in speech_chars per second of audio, for prepare's ``implausible_rate``
# filter (adjustable with --min/--max-chars-per-second). Measured with espeak-ng on the demo corpus:
# 6.8-14.7/s at its 125-185 wpm; human reading is about 10-13/s, fast speech about 17/s. 30/s is
# twice the demo's fastest clip and is first exceeded by espeak at 320 wpm (English) or 400 wpm
# (Swedish); a truncated clip ("Avklippt fil." in 0.2 s) is 55/s. At 0.3/s a lone "Ja" is kept
# up to a 6.7 s recording; a 30 s clip labelled with one short word is dropped.
MIN_CHARS_PER_SECOND = 0.3
MAX_CHARS_PER_SECOND = 30.0


def clean_text(text: Any) -> str:
    """Normalize a transcript: NFC, no control characters, single spaces."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """Casefold, replace punctuation and symbols with spaces, keep letters, digits and combining marks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "PSZC":
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def speech_chars(text: str) -> int:
    """Letters and digits in ``text`` (Unicode categories L* and N*), counted after NFC composition.

    Combining marks (vowel signs, viramas), punctuation, symbols and spaces are not counted,
    so the figure is a rough measure of how much is spoken, comparable across scripts.
    """
    return sum(1 for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch)[0] in "LN")
