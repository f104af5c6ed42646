"""Word and character error rates with jiwer: orthographic and normalized, corpus-level and per utterance.

Corpus rates are total edits over total reference length. Text is only split, never
otherwise altered: words are ``str.split()`` tokens, characters are code points of the
text with whitespace collapsed to single spaces (spaces count), or, for languages
written without spaces, with all whitespace removed. jiwer's default transforms
(which strip, and split on U+0020 only) are replaced by our own tokenizers.

Pairs where either side has no tokens never reach jiwer: their edit distance is
simply every reference token deleted and every hypothesis token inserted. A rate over a
reference of no tokens (a split whose references are all ``...`` or ``?!`` normalizes to
nothing) is undefined: ``None`` (``null`` in metrics.json), with a note saying why, never a number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jiwer

from whisperft.languages import get_language
from whisperft.text import normalize_text

Tokenizer = Callable[[str], list[str]]


@dataclass
class Utterance:
    """One scored pair; the edit operations are word-level, on the orthographic text."""

    id: str
    reference: str
    hypothesis: str
    word_errors: int
    words: int
    char_errors: int
    chars: int
    substitutions: int
    deletions: int
    insertions: int
    duration: float = 0.0
    stop: str | None = None  # why decoding stopped, when the decoder stopped it: "limit" or "repeat" (text.Decoded)


@dataclass(frozen=True)
class _Edits:
    """Levenshtein edit operations between a reference and a hypothesis token list."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def length(self) -> int:
        """Reference length in tokens."""
        return self.substitutions + self.deletions + self.hits


class _Tokenize(jiwer.AbstractTransform):
    """A jiwer transform that only tokenizes, with our tokenizer, in place of jiwer's defaults."""

    def __init__(self, tokenize: Tokenizer) -> None:
        self.tokenize = tokenize

    def process_string(self, s: str) -> list[list[str]]:
        return [self.tokenize(s)]

    def process_list(self, inp: list[str]) -> list[list[str]]:
        return [self.tokenize(s) for s in inp]


def words(text: str) -> list[str]:
    """Word tokens: split on any run of whitespace."""
    return text.split()


def chars(text: str) -> list[str]:
    """Character tokens with whitespace collapsed to single spaces; spaces count as characters."""
    return list(" ".join(text.split()))


def chars_nospace(text: str) -> list[str]:
    """Character tokens with all whitespace removed (for languages written without spaces)."""
    return list("".join(text.split()))


def char_tokenizer(language: str | None) -> Tokenizer:
    """``chars_nospace`` for spaceless languages (Chinese, Japanese, Thai, ...), else ``chars``."""
    spaceless = get_language(language).spaceless if language not in (None, "auto") else False
    return chars_nospace if spaceless else chars


def align_words(reference: str, hypothesis: str) -> list[tuple[str, list[str], list[str]]]:
    """The word alignment behind WER: (operation, reference words, hypothesis words) runs, in order.

    Operations are jiwer's: ``equal``, ``substitute``, ``delete`` and ``insert``.
    """
    ref, hyp = words(reference), words(hypothesis)
    if not ref or not hyp:
        return [(op, r, h) for op, r, h in (("delete", ref, []), ("insert", [], hyp)) if r or h]
    transform = _Tokenize(words)
    chunks = jiwer.process_words(reference, hypothesis, transform, transform).alignments[0]
    return [(c.type, ref[c.ref_start_idx : c.ref_end_idx], hyp[c.hyp_start_idx : c.hyp_end_idx]) for c in chunks]


def _from_alignment(chunks: Sequence[Any]) -> _Edits:
    counts = dict.fromkeys(("substitute", "delete", "insert", "equal"), 0)
    for c in chunks:
        span = c.hyp_end_idx - c.hyp_start_idx if c.type == "insert" else c.ref_end_idx - c.ref_start_idx
        counts[c.type] += span
    return _Edits(counts["substitute"], counts["delete"], counts["insert"], counts["equal"])


def _edits(refs: Sequence[str], hyps: Sequence[str], tokenize: Tokenizer, chars_level: bool) -> list[_Edits]:
    """Edit operations for every pair, from one jiwer call over all pairs where both sides have tokens."""
    sizes = [(len(tokenize(r)), len(tokenize(h))) for r, h in zip(refs, hyps, strict=True)]
    out = [_Edits(deletions=nr, insertions=nh) for nr, nh in sizes]  # exact when either side is empty
    both = [k for k, (nr, nh) in enumerate(sizes) if nr and nh]
    if both:
        process = jiwer.process_characters if chars_level else jiwer.process_words
        transform = _Tokenize(tokenize)
        result = process([refs[k] for k in both], [hyps[k] for k in both], transform, transform)
        for k, chunks in zip(both, result.alignments, strict=True):
            out[k] = _from_alignment(chunks)
    return out


def _total(edits: Sequence[_Edits]) -> _Edits:
    return _Edits(
        sum(e.substitutions for e in edits),
        sum(e.deletions for e in edits),
        sum(e.insertions for e in edits),
        sum(e.hits for e in edits),
    )


def rate(errors: int, length: int) -> float | None:
    """Errors over reference length; ``None`` when the reference has no tokens (the rate is undefined)."""
    return errors / length if length else None


_UNITS = {"wer": "words", "cer": "characters", "wer_normalized": "words", "cer_normalized": "characters"}


def _metrics(w: _Edits, c: _Edits, nw: _Edits, nc: _Edits) -> dict[str, Any]:
    totals = {"wer": w, "cer": c, "wer_normalized": nw, "cer_normalized": nc}
    out: dict[str, Any] = {name: rate(e.errors, e.length) for name, e in totals.items()}
    out.update(
        substitutions=w.substitutions,
        deletions=w.deletions,
        insertions=w.insertions,
        hits=w.hits,
        reference_words=w.length,
        substitutions_normalized=nw.substitutions,
        deletions_normalized=nw.deletions,
        insertions_normalized=nw.insertions,
        hits_normalized=nw.hits,
        reference_words_normalized=nw.length,
    )
    out["notes"] = [
        f"{name}: null, the references have no {_UNITS[name]}"
        + (" after normalization" if name.endswith("_normalized") else "")
        + f" to divide {e.errors} errors by"
        for name, e in totals.items()
        if not e.length
    ]
    return out


def _sdi(e: _Edits) -> tuple[int, int, int]:
    return e.substitutions, e.deletions, e.insertions


def score(
    ids: Sequence[str],
    refs: Sequence[str],
    hyps: Sequence[str],
    language: str | None,
    durations: Sequence[float] | None = None,
) -> tuple[dict[str, Any], list[Utterance]]:
    """Corpus-level WER/CER (total errors over total reference length), and per-utterance counts.

    ``wer``/``cer`` are on the text as given, ``*_normalized`` on ``normalize_text`` of both sides.
    Integer totals of word-level substitutions, deletions, insertions, hits and reference words come
    with them, for both. A rate whose reference has no tokens is ``None``, and ``notes`` (a list of
    strings, empty when all is well) says which and why.
    """
    refs, hyps = list(refs), list(hyps)
    ctok = char_tokenizer(language)
    nrefs, nhyps = [normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]
    w, c = _edits(refs, hyps, words, False), _edits(refs, hyps, ctok, True)
    nw, nc = _edits(nrefs, nhyps, words, False), _edits(nrefs, nhyps, ctok, True)
    if durations is None or len(durations) == 0:
        durations = [0.0] * len(refs)
    utts = [
        Utterance(i, r, h, we.errors, we.length, ce.errors, ce.length, *_sdi(we), duration=float(d))
        for i, r, h, d, we, ce in zip(ids, refs, hyps, durations, w, c, strict=True)
    ]
    return _metrics(_total(w), _total(c), _total(nw), _total(nc)), utts
