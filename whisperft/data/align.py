"""A long recording's transcript, with word times, aligned to the text that was read; clips cut at pauses.

The design is Mozilla DSAlign's (doc/algo.md): transcribe, align the transcript to the given text, keep
the stretches where the two agree, and label them with the given text. Stretches that do not match drop
out by themselves: a paragraph left unread, a heading, speech that is not in the text (the reader's
introduction, an added paragraph) and music.

1. Text and transcript are normalized (``text.normalize_text``, accents dropped) and split into words
   (characters, in scripts written without spaces). Their longest common subsequence of words
   (rapidfuzz ``Indel``: insertions and deletions only) anchors each unit of the text (a sentence,
   ``data.longform``) to transcript words; an unread paragraph and a read one that is not in the text
   are never paired off, as Levenshtein's cheaper substitutions would pair them.
2. Each unit's span runs from its first to its last anchor, widened over misheard words beside them,
   and its local CER is the Levenshtein distance of its characters (spaces aside) to the span's, over
   its length. A unit is kept when its CER is at most ``max_cer`` and its words are the span's (word
   Levenshtein alignment): a word read as another ("red" read "blue"), left out or added is a
   ``mismatch`` whatever the sentence's length, since its label would say what was not said. Only a
   spelling or an inflection passes (``_same_word``). Numbers are compared in words, in the recording's
   language (``text.spell_numbers``: the book's "3" is the transcript's "three"); labels keep the book's.
3. A clip's edges are pauses: gaps between the speech regions of a voice activity detector (Silero VAD)
   that lie between the unit's last word and the next word of the transcript (from the middle of one to
   the middle of the other, since word times from cross-attention are off by a tenth of a second or
   more). Sentences that no pause parts are joined into one clip; if one of them is not kept, none is.

Times are in seconds from the recording's start.
"""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Indel, Levenshtein

from whisperft.data.longform import Unit
from whisperft.text import MAX_ALIGN_CER, MAX_CLIP_SECONDS, normalize_text, spell_numbers

Word = tuple[float, float, str]  # (start, end, word) of the transcript
Region = tuple[float, float]  # (start, end) of speech, as the VAD found it

# Reasons a unit of the text becomes no clip, as prepare_report.json counts them.
NOT_READ = "not_read"  # fewer than half its words found in the transcript: unread, or a heading
MISMATCH = "mismatch"  # found, but read otherwise than written: a word differs, or its CER is over max_cer
NO_PAUSE = "no_pause"  # no pause parts it from speech that is not kept
TOO_LONG = "too_long"  # a clip of sentences that no pause parts is longer than max_duration
UNHEARD = "untranscribed_speech"  # its clip would hold speech the transcriber left out
NO_SPEECH = "no_speech"  # the VAD hears no speech where its words are (and, in prepare, music or silence)
# Seconds of speech a clip may hold beyond its words' times: cross-attention times the last word of a
# window early (by 0.67 s on a real Asterisk prompt); a dropped sentence lasts longer.
EDGE_SLACK = 0.8
MIN_FOUND = 0.5  # of a unit's words found in the transcript, below which it counts as not read
MAX_STRAY = 3  # transcript words an anchor may stray from its unit's others (``_densest``)
MIN_VARIANT_CHARS = 5  # a word this long may differ by one letter's edit and be the same word (``_same_word``)
MIN_EXTRA_S = 1.0  # unmatched transcript shorter than this is a misheard word, not speech outside the text
# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, CJK ideographs): each
# character is a word of the alignment.
_SPACELESS = re.compile(
    r"([\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])"
)


@dataclass(frozen=True)
class AlignOptions:
    """``max_cer``: the local CER (0-1) a unit may have and be kept. ``max_duration``: the longest clip
    in seconds (the model's window). ``pad``: seconds of the pause kept at each end of a clip, at most
    half the pause. ``language``: the recording's (ISO 639-1), in which numbers are compared."""

    max_cer: float = MAX_ALIGN_CER
    max_duration: float = MAX_CLIP_SECONDS
    pad: float = 0.15
    language: str | None = None


@dataclass(frozen=True)
class Clip:
    """A stretch of the recording and its label, the units' own text; ``cer``: its local CER (0-1)."""

    start: float
    end: float
    text: str
    units: tuple[int, ...]
    cer: float
    speech_start: float  # where its speech begins and ends, by the VAD (start and end add ``pad``)
    speech_end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Skip:
    """A unit of the text that became no clip, and why (one of the reasons above)."""

    unit: Unit
    reason: str
    detail: str


@dataclass
class Alignment:
    """What one recording gave: clips, the units skipped, and speech found in no unit (``extra``: start,
    end and the transcript's words, e.g. the reader's introduction)."""

    clips: list[Clip] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    extra: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Heard:
    """What was heard in a recording: the transcript's words, the VAD's speech and the pauses around it."""

    words: Sequence[Word]
    speech: Sequence[Region]
    pauses: Sequence[Region]
    duration: float


@dataclass
class _Match:
    """How one unit aligned: its transcript words (first, last index; -1 when not found), its words found
    in the transcript (``equal`` of ``tokens``), and the edit distance of its characters to the span's."""

    tokens: int
    length: int
    equal: int = 0
    first: int = -1
    last: int = -1
    errors: int = 0
    differs: tuple[str, str] | None = None  # the first words of the unit not read as written, and as heard

    @property
    def cer(self) -> float:
        return self.errors / max(1, self.length)


def align(
    units: Sequence[Unit],
    words: Sequence[Word],
    speech: Sequence[Region],
    duration: float,
    options: AlignOptions = AlignOptions(),
) -> Alignment:
    """Align ``words`` (the transcript, in order) to ``units`` (the text) and cut clips at the pauses
    between the ``speech`` regions of a recording of ``duration`` seconds. Words that are only
    punctuation (faster-whisper keeps a spaced " —" as a word) take no part."""
    words = [w for w in words if _tokens(w[2], options.language)]
    matches = _match(units, words, options.language)
    out = Alignment(extra=_extra(words, matches))
    heard = _Heard(words, speech, pauses(speech, duration), duration)
    i = 0
    while i < len(units):
        reason = _unit_problem(matches[i], options.max_cer)
        if reason:
            out.skipped.append(Skip(units[i], *reason))
            i += 1
            continue
        j, clip = _clip(units, matches, heard, i, options)
        if isinstance(clip, Clip):
            out.clips.append(clip)
        else:
            out.skipped += [Skip(units[k], clip[0], clip[1]) for k in range(i, j + 1)]
        i = j + 1
    return out


def _unit_problem(m: _Match, max_cer: float) -> tuple[str, str] | None:
    if m.first < 0:
        return NOT_READ, f"{m.equal} of its {m.tokens} words found in the transcript"
    if m.cer > max_cer:
        return MISMATCH, f"read otherwise: CER {m.cer:.2f} > {max_cer:g} (--max-cer)"
    if m.differs is not None:
        return MISMATCH, f"read otherwise: {m.differs[0]!r} heard as {m.differs[1]!r} (CER {m.cer:.2f})"
    return None


def _match(units: Sequence[Unit], words: Sequence[Word], language: str | None = None) -> list[_Match]:
    """Per unit its ``_Match``, in two steps.

    1. Anchors: the longest common subsequence of the text's and the transcript's normalized words
       (rapidfuzz ``Indel``: insertions and deletions only, so an unread paragraph and a read one that is
       not in the text can never be paired off as substitutions, as Levenshtein's cheaper substitution
       would). A unit with at least ``MIN_FOUND`` of its words among them is found.
    2. Its span: from its first to its last anchor, widened over the unanchored words beside them
       (misheard first or last words) as far as that does not raise the edit distance of its characters
       (a word as near as far, "wheel" read "wheelhouse", is taken: a clip cannot end inside speech).
    """
    unit_tokens = [_tokens(u.text, language) for u in units]
    text_units = [k for k, toks in enumerate(unit_tokens) for _ in toks]
    text_tokens = [t for toks in unit_tokens for t in toks]
    said = [_tokens(w[2], language) for w in words]
    said_words = [k for k, toks in enumerate(said) for _ in toks]
    said_tokens = [t for toks in said for t in toks]
    matches = [_Match(len(toks), len("".join(toks))) for toks in unit_tokens]
    anchors: list[list[int]] = [[] for _ in units]  # per unit: (its token index, transcript word) of anchors
    positions: list[list[int]] = [[] for _ in units]
    starts, total = [], 0  # each unit's first token
    for m in matches:
        starts.append(total)
        total += m.tokens
    for op in Indel.opcodes(text_tokens, said_tokens):
        if op.tag == "equal":
            for i, j in zip(range(op.src_start, op.src_end), range(op.dest_start, op.dest_end), strict=True):
                k = text_units[i]
                matches[k].equal += 1
                anchors[k].append(said_words[j])
                positions[k].append(i - starts[k])
    for k, m in enumerate(matches):
        positions[k], anchors[k] = _densest(positions[k], anchors[k])
        m.equal = len(anchors[k])
    floor = 0  # the first transcript word no earlier unit has taken
    found = [k for k, m in enumerate(matches) if m.tokens and m.equal >= MIN_FOUND * m.tokens]
    for n, k in enumerate(found):
        m = matches[k]
        first, last = anchors[k][0], anchors[k][-1]
        ceiling = min(anchors[found[n + 1]]) - 1 if n + 1 < len(found) else len(words) - 1
        lead, trail = min(positions[k]), m.tokens - 1 - max(positions[k])
        firsts = range(min(first, max(floor, first - lead - 1)), first + 1)
        lasts = range(last, max(last, min(ceiling, last + trail + 1)) + 1)
        reference = "".join(unit_tokens[k])
        best = min(
            (Levenshtein.distance(reference, "".join(t for toks in said[a : b + 1] for t in toks)), a - b, a, b)
            for a in firsts
            for b in lasts
        )
        m.errors, _, m.first, m.last = best
        m.differs = _differs(unit_tokens[k], [t for toks in said[m.first : m.last + 1] for t in toks])
        floor = m.last + 1
    return matches


def _differs(text: list[str], heard: list[str]) -> tuple[str, str] | None:
    """The first words of ``text`` that ``heard`` has otherwise (Levenshtein alignment of the words), as
    (written, heard) with "" for a word left out or added; None when every difference is ``_same_word``."""
    ops = Levenshtein.opcodes(text, heard)
    for unequal, run in itertools.groupby(ops, key=lambda op: op.tag != "equal"):
        if not unequal:
            continue
        edits = list(run)  # neighbouring edits are one difference: "ice cream" heard "icecream"
        written = " ".join(text[edits[0].src_start : edits[-1].src_end])
        said = " ".join(heard[edits[0].dest_start : edits[-1].dest_end])
        if not _same_word(written, said):
            return written, said
    return None


def _same_word(written: str, said: str) -> bool:
    """Whether ``said`` is ``written`` spelled otherwise: the same letters split or joined ("ice cream",
    "icecream"), or one letter's edit in a word of ``MIN_VARIANT_CHARS`` or more ("realise", "realize";
    "apple", "apples"). "red" and "bed" are different words, and so are "red" and "blue"."""
    a, b = written.replace(" ", ""), said.replace(" ", "")
    return a == b or (min(len(a), len(b)) >= MIN_VARIANT_CHARS and Levenshtein.distance(a, b) <= 1)


def _tokens(text: str, language: str | None = None) -> list[str]:
    """The words of ``text`` as aligned: numbers in words (``spell_numbers`` in ``language``), then
    ``normalize_text`` without accents (a script written without them, "numero", matches "número" read
    aloud; both sides lose them), characters of spaceless scripts apart."""
    decomposed = unicodedata.normalize("NFKD", normalize_text(spell_numbers(text, language)))
    folded = unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    return _SPACELESS.sub(r" \1 ", folded).split()


def _densest(positions: list[int], anchors: list[int]) -> tuple[list[int], list[int]]:
    """The longest run of a unit's anchors (token position in the unit, transcript word) in which no two
    neighbours are parted by more than ``MAX_STRAY`` transcript words beyond the unit's own words between
    them: "the cottage" matched in a read paragraph that is not in the text, before the unit that begins
    "The cottage stood", is left out."""
    runs: list[tuple[list[int], list[int]]] = []
    for k, (p, w) in enumerate(zip(positions, anchors, strict=True)):
        if k and w - anchors[k - 1] - (p - positions[k - 1]) <= MAX_STRAY:
            runs[-1][0].append(p)
            runs[-1][1].append(w)
        else:
            runs.append(([p], [w]))
    return max(runs, key=lambda r: len(r[0]), default=([], []))


def _extra(words: Sequence[Word], matches: list[_Match]) -> list[tuple[float, float, str]]:
    """Runs of transcript words in no unit's span, lasting ``MIN_EXTRA_S`` or more."""
    covered = [False] * len(words)
    for m in matches:
        if m.first >= 0:
            covered[m.first : m.last + 1] = [True] * (m.last + 1 - m.first)
    runs: list[list[int]] = []
    for k, c in enumerate(covered):
        if c:
            continue
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    out = []
    for run in runs:
        start, end = words[run[0]][0], words[run[-1]][1]
        if end - start >= MIN_EXTRA_S:
            out.append((start, end, " ".join(words[k][2] for k in run)))
    return out


def pauses(speech: Sequence[Region], duration: float) -> list[Region]:
    """The silences, (start, end) in seconds, before, between and after the ``speech`` regions of a
    recording of ``duration`` seconds."""
    edges = [0.0] + [t for region in speech for t in region] + [duration]
    return [(edges[k], edges[k + 1]) for k in range(0, len(edges), 2) if edges[k + 1] > edges[k]]


def _pause_between(heard: _Heard, before: int, after: int, last: bool) -> Region | None:
    """The pause between the middle of word ``before`` and the middle of word ``after`` (either may be out
    of range: the recording's start or end) nearest the unit: the last such pause before it (``last``)
    or the first after it. Not the longest: where the transcript lacks a sentence, the longest pause
    between its neighbours may lie beyond that sentence."""
    words, pauses = heard.words, heard.pauses
    lo = sum(words[before][:2]) / 2 if 0 <= before < len(words) else 0.0
    hi = sum(words[after][:2]) / 2 if 0 <= after < len(words) else heard.duration
    k = max(0, bisect.bisect_left(pauses, (lo,)) - 1)  # sorted and disjoint: start where lo falls
    inside = [p for p in itertools.takewhile(lambda p: p[0] < hi, _after(pauses, k)) if p[1] > lo]
    if not inside:
        return None
    return inside[-1] if last else inside[0]


def _after(items: Sequence[Region], k: int) -> Iterator[Region]:
    """``items[k:]`` without the copy."""
    return (items[n] for n in range(k, len(items)))


def _unheard(heard: _Heard, first: int, last: int, a: float, b: float) -> bool:
    """Whether the VAD hears more than ``EDGE_SLACK`` seconds of speech in [a, b] before the unit's first
    word starts or after its last word ends: a sentence the transcriber dropped, next to the unit."""
    lo, hi = heard.words[first][0], heard.words[last][1]
    k = max(0, bisect.bisect_left(heard.speech, (a,)) - 1)
    near = itertools.takewhile(lambda r: r[0] < b, _after(heard.speech, k))
    outside = sum(max(0.0, min(r[1], b, lo) - max(r[0], a)) + max(0.0, min(r[1], b) - max(r[0], a, hi)) for r in near)
    return outside > EDGE_SLACK


def _clip(
    units: Sequence[Unit], matches: list[_Match], heard: _Heard, i: int, options: AlignOptions
) -> tuple[int, Clip | tuple[str, str]]:
    """The clip that starts with unit ``i`` (kept), joining the units after it that no pause parts from it:
    (its last unit, the clip or the (reason, detail) that skips all of them)."""
    start = _pause_between(heard, matches[i].first - 1, matches[i].first, last=True)
    j = i
    while True:
        end = _pause_between(heard, matches[j].last, matches[j].last + 1, last=False)
        nxt = j + 1
        shared = nxt < len(units) and 0 <= matches[nxt].first <= matches[j].last  # a word read across both
        if end is not None and not shared:
            break
        adjacent = nxt < len(units) and 0 <= matches[nxt].first <= matches[j].last + 1
        if not adjacent or _unit_problem(matches[nxt], options.max_cer):
            return j, (NO_PAUSE, "no pause parts it from the speech after it, which is not kept")
        j = nxt
    if start is None:
        return j, (NO_PAUSE, "no pause before it parts it from the speech before")
    if start[1] >= end[0]:  # the same silence on both sides: the VAD hears nothing where its words are
        return j, (NO_SPEECH, "no speech where the transcript has its words")
    a = max(start[0], start[1] - min(options.pad, (start[1] - start[0]) / 2))
    b = min(end[1], end[0] + min(options.pad, (end[1] - end[0]) / 2))
    cers = [matches[k] for k in range(i, j + 1)]
    cer = sum(m.errors for m in cers) / max(1, sum(m.length for m in cers))
    if _unheard(heard, matches[i].first, matches[j].last, a, b):
        return j, (UNHEARD, "the clip would hold speech that is not in the transcript")
    if b - a > options.max_duration:
        return j, (TOO_LONG, f"{b - a:.1f} s without a pause between sentences > {options.max_duration:g} s")
    text = " ".join(units[k].text for k in range(i, j + 1))
    return j, Clip(round(a, 3), round(b, 3), text, tuple(range(i, j + 1)), round(cer, 4), start[1], end[0])
