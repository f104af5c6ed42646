"""Transcript text helpers: cleaning for storage, normalizing for scoring, counting spoken characters,
and the bounds on how much text a decoder may produce for a stretch of audio (``token_limit``, ``runaway_stop``).

``normalize_text`` lowercases and drops punctuation and symbols but keeps combining
marks (Unicode category M), unlike Whisper's BasicTextNormalizer, which strips them
and so destroys words in Devanagari, Tamil, Thai and other scripts.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from num2words import CONVERTER_CLASSES, num2words

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\ufeff]")
# Transcribers' notes, not words that were spoken: a square- or curly-bracketed insertion anywhere, "[beep]",
# "[laughter]", "{noise}", "[sic]" (the markup of Switchboard, Fisher and CHiME, and the Asterisk prompt scripts),
# or a transcript that is nothing but a bracketed note, "(ahooga)", "<noise>". Parentheses and angle brackets
# inside a sentence are text: "München (Bayern)", "les ami(e)s", GigaSpeech's "<COMMA>". Issue #19.
_NOTE = re.compile(r"\[[^\]]*[^\W\d_][^\]]*\]|\{[^}]*\}|^\s*(?:\([^()]*\)|<[^<>]*>|\[[^\[\]]*\])\s*$")

# Plausible speaking rates, in speech_chars per second of audio, for prepare's ``implausible_rate``
# filter (adjustable with --min/--max-chars-per-second). Measured with espeak-ng on the demo corpus:
# 6.8-14.7/s at its 125-185 wpm; human reading is about 10-13/s, fast speech about 17/s. 30/s is
# twice the demo's fastest clip and is first exceeded by espeak at 320 wpm (English) or 400 wpm
# (Swedish); a truncated clip ("Avklippt fil." in 0.2 s) is 55/s. At 0.3/s a lone "Ja" is kept
# up to a 6.7 s recording; a 30 s clip labelled with one short word is dropped.
MIN_CHARS_PER_SECOND = 0.3
MAX_CHARS_PER_SECOND = 30.0

# The most Whisper tokens a decoder may produce per second of audio (``token_limit``; issue #18, item 8):
# a model that does not know the language loops to the decoder's limit (444 tokens) on a 3 s clip.
# Measured like MAX_CHARS_PER_SECOND: Whisper's tokenizer over the UDHR's article 1 in 17 languages and
# 20 demo sentences, spoken by espeak-ng at 320 wpm (where English reaches MAX_CHARS_PER_SECOND), silence
# trimmed. Tokens per second: en 6.9, es 7.0, de 8.3, ru 8.4, pl 9.0, sv 9.8 (one sentence 12.6), ko 10.1,
# fi 10.3, fr 11.8, ar 12.1, th 14.3, vi 15.9, el 16.3, ta 23.5, hi 30.7 (Devanagari costs 2.1 tokens
# per letter); of languages Whisper lacks (issue #20), eo 11.8, ga 13-18, ky 14-15, cv 18.6, ug 24-31;
# at 175 wpm each is 0.56-0.6 of that. 40/s is the highest, Hindi, plus a third for the
# spread between single sentences (Swedish ones reach 1.3x their mean). TOKEN_SLACK covers what takes
# tokens but little time: punctuation, a lone word in a long pause (" Okej." is 3 tokens in 0.3 s).
MAX_TOKENS_PER_SECOND = 40.0
TOKEN_SLACK = 16
TIMESTAMP_TOKENS_PER_SECOND = 2.0  # with timestamps, <|t0|> <|t1|> per segment, segments of 1 s at the shortest
# ``runaway_stop``: a decode whose end repeats one n-gram of 1-32 tokens at least 4 times, over at least
# 32 tokens, is looping (like Whisper's gzip compression ratio > 2.4 test, but decidable token by token).
REPEAT_MAX_NGRAM = 32
REPEAT_MIN_COPIES = 4
REPEAT_MIN_TOKENS = 32
# The beam width each engine decodes with when none is asked for (transcribe, eval, serve and prepare's
# aligner alike, so that the WER eval measures is the WER transcribe gives). Measured by make bench
# (benchmarks/bench_beams.py; BENCHMARKS.md, beam_size_ct2 and beam_size_pytorch), greedy against beam 5
# on short clips, a long recording with and without timestamps, and real voices, bundled base on 2 CPU
# cores: on faster-whisper beam 5 costs 0.9-1.3x greedy's time and cuts the long recording's subtitle
# WER from 4.2% to 2.7% (faster-whisper's own default is 5); on PyTorch it costs 2.4-7x greedy's time
# for at most 0.9 points, and no gain on short clips, so PyTorch stays greedy.
CT2_BEAMS = 5
PYTORCH_BEAMS = 1
# openai-whisper's temperature fallback (``transcribe.py``), which every engine follows: a decode whose gzip
# compression ratio passes COMPRESSION_RATIO_THRESHOLD (text that repeats itself) is sampled again at each of
# FALLBACK_TEMPERATURES in turn.
COMPRESSION_RATIO_THRESHOLD = 2.4
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
# ... and its no-speech rule: a window whose <|nospeech|> probability passes NO_SPEECH_PROB while its average
# token log-probability is under LOG_PROB_FLOOR is silence, and its text is dropped.
NO_SPEECH_PROB = 0.6
LOG_PROB_FLOOR = -1.0
# Shared limits of every stage: a clip longer than Whisper's 30 s window is never a training example
# (prepare's --max-duration, data.max_duration, the long-recording aligner), and eval and validation decode
# EVAL_BATCH_SIZE utterances of at most one window together.
MAX_CLIP_SECONDS = 30.0
EVAL_BATCH_SIZE = 16
# Long recordings: the local CER a sentence may have against the aligner's transcript and be kept (prepare's
# --max-cer): room for the aligner's own errors on a sentence read as written; a word read as another is
# refused by the word check (``data.align``), whatever this rate.
MAX_ALIGN_CER = 0.15


@dataclass(frozen=True)
class Decoded:
    """One utterance's decoded text, and why its decoding stopped: ``None`` when the model ended it,
    ``"limit"`` at ``token_limit``, ``"repeat"`` at ``runaway_stop``'s repetition rule."""

    text: str
    stop: str | None = None


def stop_counts(decoded: Sequence[Decoded]) -> dict[str, int]:
    """``token_limit_hits``: utterances whose decoding reached its token limit; ``repetition_stops``:
    those stopped for repeating themselves (``runaway_stop``). Either means a looping model."""
    return {
        "token_limit_hits": sum(d.stop == "limit" for d in decoded),
        "repetition_stops": sum(d.stop == "repeat" for d in decoded),
    }


def clean_text(text: Any) -> str:
    """Normalize a transcript: NFC, no control characters, single spaces."""
    if text is None:
        return ""
    text = unicodedata.normalize("NFC", str(text))
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


def transcript_note(text: str) -> str | None:
    """The first transcriber's note in ``text`` ("[beep]", "<noise>", "(ahooga)"), or None when it has none.

    A transcript with a note is not what was said: prepare skips it as ``annotated_text``.
    """
    found = _NOTE.search(text)
    return found.group(0).strip() if found else None


def normalize_text(text: str) -> str:
    """Casefold, replace punctuation, symbols, separators and controls with spaces, drop format characters,
    keep letters, digits and combining marks.

    Format characters (Unicode Cf) are dropped, not made spaces: the zero-width non-joiner inside a
    Persian or Uyghur word (``می‌خواهم``) and the joiners of Indic scripts shape letters within one word.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        out.append(" " if cat[0] in "PSZC" else ch)
    return " ".join("".join(out).split())


# A number as written: digits, with an English thousands separator ("1,000") or a decimal part ("3.5",
# "3,5"), and an English ordinal suffix ("21st"). Digits inside a word ("MP3", "4K") are left alone.
_NUMBER = re.compile(r"(?<![^\W\d_])(\d{1,3}(?:,\d{3})+|\d+)(?:([.,])(\d+))?(st|nd|rd|th)?(?![^\W\d_])")


def spell_numbers(text: str, language: str | None) -> str:
    """``text`` with its numbers written in words in ``language`` (an ISO 639-1 code), by num2words:
    "3" -> "three", "25" -> "twenty-five", "3,5" -> "tre komma fem" (sv), "21st" -> "twenty-first" (en).

    So that a book's "3" and a transcript's "three" (or "twenty five" and "25") compare as one word.
    In English a comma followed by three digits groups thousands, elsewhere a comma or point begins the
    decimals. Text in a language num2words lacks (``None``, ``zh``, ``ky``...) comes back unchanged.
    """
    if not language or not _NUMBER.search(text) or not _spells(language):
        return text

    def words(m: re.Match) -> str:
        whole, sep, decimals, suffix = m.groups()
        if sep == "," and language == "en" and len(decimals) == 3:  # "7,500": thousands, not decimals
            whole, sep, decimals = whole + decimals, None, None
        whole = whole.replace(",", "")
        if suffix:
            return f" {num2words(int(whole), lang=language, to='ordinal')} " if language == "en" else m.group(0)
        spoken = num2words(float(f"{whole}.{decimals}") if decimals else int(whole), lang=language)
        return f" {spoken} "

    return _NUMBER.sub(words, text)


@functools.cache
def _spells(language: str) -> bool:
    """Whether num2words writes numbers in ``language``."""
    return language in CONVERTER_CLASSES


def speech_chars(text: str) -> int:
    """Letters and digits in ``text`` (Unicode categories L* and N*), counted after NFC composition.

    Combining marks (vowel signs, viramas), punctuation, symbols and spaces are not counted,
    so the figure is a rough measure of how much is spoken, comparable across scripts.
    """
    return sum(1 for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch)[0] in "LN")


def token_limit(duration_s: float, timestamps: bool = False) -> int:
    """Most tokens (after the prompt) a decoder may produce for ``duration_s`` seconds of audio:
    ``ceil(MAX_TOKENS_PER_SECOND * duration_s) + TOKEN_SLACK``, plus ``TIMESTAMP_TOKENS_PER_SECOND`` per
    second with timestamps. Engines cap it again at the decoder's own limit (444 for Whisper)."""
    rate = MAX_TOKENS_PER_SECOND + (TIMESTAMP_TOKENS_PER_SECOND if timestamps else 0.0)
    return math.ceil(rate * max(0.0, float(duration_s))) + TOKEN_SLACK


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` (UTF-8) over the bytes zlib compresses them to, as openai-whisper measures how much
    a decode repeats itself (over ``COMPRESSION_RATIO_THRESHOLD``: a loop). 0.0 for empty text."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def repeat_need(period: int) -> int:
    """Tokens a run of period ``period`` must span to count as a loop: ``max(4 * period, 32)``."""
    return max(REPEAT_MIN_COPIES * period, REPEAT_MIN_TOKENS)


def runaway_stop(tokens: Sequence[int], limit: int | None, repeats: bool = True) -> tuple[int, str | None]:
    """Where a bounded decoder stops ``tokens`` (the ids after the prompt, special tokens removed):
    ``(kept, reason)``, keeping ``tokens[:kept]``.

    Scanning token by token, decoding stops at the first length n at which either
    - the last n' <= n tokens have a period p (each equals the token p positions before it) with
      1 <= p <= 32 and n' >= max(4p, 32): the same p-gram 4 or more times in a row, the last copy
      possibly partial, spanning 32 tokens or more: reason ``"repeat"``; or
    - n reaches ``limit`` (``token_limit`` of the audio, or the decoder's; None: none): reason ``"limit"``.
    Otherwise ``(len(tokens), None)``. ``repeats=False`` applies the limit only. O(len(tokens) * 32).
    The PyTorch engine stops on the same rule while it generates (``models.decode.RepetitionStop``);
    ctranslate2 has no such hook, so its output is cut here afterwards (same text, no time saved).
    """
    runs = [0] * (REPEAT_MAX_NGRAM + 1)  # runs[p]: positions in a row equal to the token p before them
    for n in range(1, len(tokens) + 1):
        i = n - 1
        for p in range(1, min(REPEAT_MAX_NGRAM, i) + 1) if repeats else ():
            runs[p] = runs[p] + 1 if tokens[i] == tokens[i - p] else 0
            if runs[p] + p >= repeat_need(p):
                return n, "repeat"
        if limit is not None and n >= limit:
            return n, "limit"
    return len(tokens), None
