"""WER/CER from whisperft.metrics against jiwer's own top-level functions and rapidfuzz, on Unicode-heavy text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from whisperft.metrics import Utterance, score
from whisperft.text import (
    MAX_TOKENS_PER_SECOND,
    TOKEN_SLACK,
    clean_text,
    normalize_text,
    runaway_stop,
    speech_chars,
    token_limit,
)

SV = "Vi åker till Göteborg i morgon."

# Single-spaced, stripped text, so that jiwer's default transforms split exactly as str.split() does.
PAIRS = [
    (SV, "vi åker till göteborg i morgon"),  # Swedish: case and punctuation only
    ("Tåget är försenat med tio minuter.", "Taget ar forsenat med tio minuter."),  # å ä ö lost
    ("नमस्ते दुनिया, आप कैसे हैं?", "नमस्ते दुनिय आप कैसे है"),  # Devanagari, vowel signs dropped
    ("வணக்கம் உலகம்", "வணக்கம் உலகம் நன்றி"),  # Tamil, one insertion
    ("สวัสดี ครับ", "สวัสดีครับ"),  # Thai, a space lost
    ("مرحبا بالعالم", "مرحبا بالعالم!"),  # Arabic
    ("I love it 😀🎉 👍🏽", "I love it 😀 👍"),  # emoji, with a skin-tone modifier
    (SV, unicodedata.normalize("NFD", SV)),  # NFC vs NFD
    ("...", "hello"),  # punctuation-only reference
    ("— !? …", ""),  # punctuation-only reference, empty hypothesis
    ("Kan du hjälpa mig?", ""),  # empty hypothesis
    ("Hej där", "Hej där"),  # exact
]

CHINESE = [
    ("今天 天气 很好。", "今天天气很好"),
    ("我爱北京天安门", "我爱北京天安"),
    ("你好，世界！", "你好 世界"),
    ("สวัสดี ครับ", "สวัสดีครับ"),  # Thai is spaceless too
    ("。", ""),
]


def _split(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return [str(i) for i in range(len(pairs))], refs, hyps


def _norm(texts: list[str]) -> list[str]:
    return [normalize_text(t) for t in texts]


def _nospace(texts: list[str]) -> list[str]:
    return ["".join(t.split()) for t in texts]


@pytest.mark.parametrize("language", ["sv", "hi", None, "auto"])
def test_corpus_figures_equal_jiwer(language: str | None) -> None:
    ids, refs, hyps = _split(PAIRS)
    m, _ = score(ids, refs, hyps, language)
    assert m["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert m["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    assert m["wer_normalized"] == pytest.approx(jiwer.wer(_norm(refs), _norm(hyps)))
    assert m["cer_normalized"] == pytest.approx(jiwer.cer(_norm(refs), _norm(hyps)))


def test_corpus_totals_equal_jiwer() -> None:
    ids, refs, hyps = _split(PAIRS)
    m, utts = score(ids, refs, hyps, "sv")
    out, nout = jiwer.process_words(refs, hyps), jiwer.process_words(_norm(refs), _norm(hyps))
    assert (m["substitutions"], m["deletions"], m["insertions"], m["hits"]) == (
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
    )
    assert m["reference_words"] == sum(len(r.split()) for r in refs) == out.hits + out.substitutions + out.deletions
    assert (m["substitutions_normalized"], m["deletions_normalized"], m["insertions_normalized"]) == (
        nout.substitutions,
        nout.deletions,
        nout.insertions,
    )
    assert all(isinstance(m[k], int) for k in ("substitutions", "deletions", "insertions", "hits", "reference_words"))
    assert sum(u.substitutions for u in utts) == m["substitutions"]
    assert sum(u.insertions for u in utts) == m["insertions"]


@pytest.mark.parametrize(("ref", "hyp"), [p for p in PAIRS if p[0].split()], ids=lambda s: s[:12])
def test_each_pair_equals_jiwer(ref: str, hyp: str) -> None:
    m, [u] = score(["x"], [ref], [hyp], "sv")
    assert m["wer"] == pytest.approx(jiwer.wer(ref, hyp))
    assert m["cer"] == pytest.approx(jiwer.cer(ref, hyp))
    assert u.word_errors / u.words == pytest.approx(jiwer.wer(ref, hyp))
    if normalize_text(ref):
        assert m["wer_normalized"] == pytest.approx(jiwer.wer(normalize_text(ref), normalize_text(hyp)))
        assert m["cer_normalized"] == pytest.approx(jiwer.cer(normalize_text(ref), normalize_text(hyp)))


@pytest.mark.parametrize("language", ["zh", "ja", "th", "Chinese"])
def test_spaceless_cer_ignores_spaces(language: str) -> None:
    ids, refs, hyps = _split(CHINESE)
    m, utts = score(ids, refs, hyps, language)
    assert m["cer"] == pytest.approx(jiwer.cer(_nospace(refs), _nospace(hyps)))
    assert m["cer_normalized"] == pytest.approx(jiwer.cer(_nospace(_norm(refs)), _nospace(_norm(hyps))))
    assert m["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert utts[0].char_errors == 1 and utts[0].chars == 7  # only the "。" differs; spaces are not characters
    spaced, _ = score(ids, refs, hyps, "sv")
    assert spaced["cer"] != m["cer"]


def test_nfc_and_nfd_differ_only_orthographically() -> None:
    m, [u] = score(["x"], [SV], [unicodedata.normalize("NFD", SV)], "sv")
    assert u.word_errors == 2 and u.chars == len(SV)  # "åker" and "Göteborg" differ in code points
    assert m["wer_normalized"] == 0.0 and m["cer_normalized"] == 0.0


def test_known_case() -> None:
    m, [u] = score(["x"], ["a b c d"], ["a x c d e"], "en", [1.5])
    assert (u.substitutions, u.deletions, u.insertions) == (1, 0, 1)
    assert (u.word_errors, u.words) == (2, 4)
    assert m["wer"] == 0.5
    assert (m["substitutions"], m["deletions"], m["insertions"], m["hits"], m["reference_words"]) == (1, 0, 1, 3, 4)
    assert u == Utterance("x", "a b c d", "a x c d e", 2, 4, 3, 7, 1, 0, 1, 1.5)


def test_empty_reference_and_hypothesis() -> None:
    m, utts = score(["a", "b", "c"], ["", "", "x y"], ["p q", "", ""], "sv")
    assert [(u.substitutions, u.deletions, u.insertions) for u in utts] == [(0, 0, 2), (0, 0, 0), (0, 2, 0)]
    assert [u.char_errors for u in utts] == [3, 0, 3]
    assert m["wer"] == 2.0 and m["cer"] == 2.0  # 4 word edits over 2 words; 6 char edits over 3 chars
    only_insertions, _ = score(["a"], [""], ["p q"], "sv")
    assert only_insertions["wer"] is None  # jiwer.wer("", "p q") returns the count 2, not a rate
    assert only_insertions["insertions"] == 2 and only_insertions["reference_words"] == 0
    silence, _ = score(["a"], [" "], [""], "zh")
    assert silence["wer"] is None and silence["cer"] is None  # 0 errors over 0 words: undefined too
    assert score([], [], [], "sv")[0]["wer"] is None


def test_a_rate_over_nothing_is_null_with_a_note() -> None:
    """Issue #18, item 7: references that normalize to nothing give no normalized rate, not 1.0 (jiwer: 3.0)."""
    refs, hyps = ["...", "?!", "…"], ["Hej.", "ja ja", ""]
    m, _ = score(["1", "2", "3"], refs, hyps, "sv")
    assert m["wer_normalized"] is None and m["cer_normalized"] is None
    assert m["reference_words_normalized"] == 0 and m["hits_normalized"] == 0
    assert m["insertions_normalized"] == 3 and m["substitutions_normalized"] == m["deletions_normalized"] == 0
    assert m["wer"] == pytest.approx(4 / 3)  # orthographic: "..." is a word; 2 substitutions, 1 insertion, 1 deletion
    assert m["notes"] == [
        "wer_normalized: null, the references have no words after normalization to divide 3 errors by",
        "cer_normalized: null, the references have no characters after normalization to divide 8 errors by",
    ]
    assert jiwer.wer([normalize_text(r) for r in refs], [normalize_text(h) for h in hyps]) == 3  # a count, not a rate
    fine, _ = score(["1"], ["Hej du."], ["hej du"], "sv")
    assert fine["notes"] == [] and fine["wer_normalized"] == 0.0
    assert (fine["hits_normalized"], fine["reference_words_normalized"], fine["hits"]) == (2, 2, 0)


def test_text_is_only_split_on_whitespace() -> None:
    messy = ["  Hej\tdu  där\u00a0Anna ", "A\nB"]
    tidy = [" ".join(t.split()) for t in messy]
    hyps = ["hej du där anna", "a b"]
    m, _ = score(["1", "2"], messy, hyps, "sv")
    assert m == score(["1", "2"], tidy, hyps, "sv")[0]
    assert m["wer"] == pytest.approx(jiwer.wer(tidy, hyps)) == pytest.approx(4 / 6)  # case is kept: Hej, Anna, A, B
    assert jiwer.wer(messy, hyps) != m["wer"]  # jiwer's defaults would split "du\u00a0där" and "A\nB" differently
    assert m["cer"] == pytest.approx(jiwer.cer(tidy, hyps))


def _distance(a: list[str], b: list[str]) -> int:
    return Levenshtein.distance(a, b)


def _check_against_rapidfuzz(refs: list[str], hyps: list[str], language: str) -> None:
    m, utts = score([str(i) for i in range(len(refs))], refs, hyps, language)
    spaceless = language == "zh"
    total = {"we": 0, "w": 0, "ce": 0, "c": 0}
    for u, r, h in zip(utts, refs, hyps, strict=True):
        wd = _distance(r.split(), h.split())
        rc = list("".join(r.split()) if spaceless else " ".join(r.split()))
        hc = list("".join(h.split()) if spaceless else " ".join(h.split()))
        assert u.substitutions + u.deletions + u.insertions == wd == u.word_errors
        assert u.words == len(r.split())
        assert u.char_errors == _distance(rc, hc) and u.chars == len(rc)
        for k, v in zip(total, (wd, len(r.split()), u.char_errors, len(rc)), strict=True):
            total[k] += v
    for rate, e, n in ((m["wer"], "we", "w"), (m["cer"], "ce", "c")):
        assert rate == (pytest.approx(total[e] / total[n]) if total[n] else None)


def test_pairs_against_rapidfuzz() -> None:
    _check_against_rapidfuzz(*_split(PAIRS)[1:], "sv")
    _check_against_rapidfuzz(*_split(CHINESE)[1:], "zh")


_TEXT = st.text(alphabet="ab åäö\t\u00a0नमस्तेக்ก่中文.,!\u0301", max_size=14)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=5), st.sampled_from(["sv", "zh"]))
def test_random_pairs_against_rapidfuzz(pairs: list[tuple[str, str]], language: str) -> None:
    _check_against_rapidfuzz([r for r, _ in pairs], [h for _, h in pairs], language)


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError):
        score(["a", "b"], ["x", "y"], ["x"], "sv")
    with pytest.raises(ValueError):
        score(["a"], ["x", "y"], ["x", "y"], "sv")


def test_normalize_text() -> None:
    assert normalize_text("नमस्ते") == "नमस्ते"  # virama and vowel sign survive
    assert normalize_text("வணக்கம், உலகம்!") == "வணக்கம் உலகம்"
    assert normalize_text("Hej, DÄR! Straße?") == "hej där strasse"
    assert normalize_text("  «Citat» — slut…  ") == "citat slut"
    assert normalize_text(unicodedata.normalize("NFD", "Åsa")) == "åsa"
    assert normalize_text("...") == ""


def test_clean_text() -> None:
    assert clean_text("  Hej\u0000 där\t\r\n du\u200b ") == "Hej där du"
    assert clean_text(None) == ""
    assert clean_text(unicodedata.normalize("NFD", "år")) == "år"
    assert clean_text(12) == "12"


def test_speech_chars() -> None:
    assert speech_chars("Avklippt fil.") == 11
    assert len("नमस्ते") == 6 and speech_chars("नमस्ते") == 4  # न म स त; not the virama or the vowel sign
    assert speech_chars("2024 år") == 6
    assert speech_chars(unicodedata.normalize("NFD", "2024 år")) == 6
    assert speech_chars("今天天气很好。") == 6
    assert speech_chars("😀 ... !? ") == 0
    assert speech_chars("") == 0


def test_token_limit_is_the_stated_rate_plus_slack() -> None:
    assert token_limit(3.0) == 3 * 40 + 16 == 136  # issue #18: not the decoder's 444 for a 3 s clip
    assert token_limit(0.0) == token_limit(-1.0) == TOKEN_SLACK
    assert token_limit(30.0, timestamps=True) == 30 * 42 + 16
    assert token_limit(2.01) == 97  # rounded up: never below the rate


def test_fast_speech_fits_its_token_limit(tiny_model: Path, tmp_path: Path) -> None:
    """MAX_TOKENS_PER_SECOND's derivation, re-measured: the shared test sentences spoken by espeak-ng at
    320 wpm (where English reaches MAX_CHARS_PER_SECOND) take well under the limit's rate."""
    from tests.helpers import ENGLISH, SWEDISH
    from whisperft.audio import decode_audio
    from whisperft.models.registry import load_processor
    from whisperft.synth import speak

    tok = load_processor(str(tiny_model)).tokenizer
    for voice, sentences in (
        ("en", ENGLISH),
        ("sv", SWEDISH[:6]),
        ("hi", ["सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।"]),
    ):
        for i, text in enumerate(sentences):
            seconds = len(decode_audio(speak(text, tmp_path / f"{voice}{i}.wav", voice=voice, speed=320))) / 16000
            tokens = len(tok.encode(" " + text, add_special_tokens=False))
            assert tokens / seconds < MAX_TOKENS_PER_SECOND and tokens < token_limit(seconds), (text, seconds)


def test_runaway_stop_rule() -> None:
    words = list(range(100, 200))  # no repeats: only the limit stops it
    assert runaway_stop(words, None) == (100, None) and runaway_stop(words, 40) == (40, "limit")
    assert runaway_stop([7] * 31, None) == (31, None) and runaway_stop([7] * 40, None) == (32, "repeat")
    eight = list(range(8))  # period 8: 4 copies are 32 tokens
    assert runaway_stop(eight * 3 + eight[:7], None) == (31, None)
    assert runaway_stop(eight * 5, None) == (32, "repeat")
    ten = list(range(10))  # period 10: 4 copies (40 tokens), the last one may be partial
    assert runaway_stop([1, 2] + ten * 3 + ten[:9], None) == (41, None)
    assert runaway_stop([1, 2] + ten * 6, None) == (42, "repeat")
    no_no = [5, 6] * 15  # "no, no, ..." 15 times: 30 tokens, a person may say that
    assert runaway_stop(no_no, None) == (30, None)
    assert runaway_stop([7] * 40, None, repeats=False) == (40, None)
    assert runaway_stop([7] * 40, 36, repeats=False) == (36, "limit")
    assert runaway_stop([7] * 40, 32) == (32, "repeat")  # both at once: the repetition is named


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=20), st.integers(0, 6), st.integers(0, 60))
def test_repetition_stop_criterion_stops_where_the_rule_does(loop: list[int], lead: int, tail: int) -> None:
    """The PyTorch engine's stopping criterion, fed one token at a time after a prompt, stops a row at the
    token where ``runaway_stop`` cuts it (so eval's texts are the same on both engines)."""
    import torch

    from whisperft.models.decode import RepetitionStop

    rows = [list(range(50, 50 + lead)) + (loop * 100)[: 40 + tail], list(range(60, 60 + lead + 40 + tail))]
    prompt = [50258, 50300, 50359, 50363]
    ids = torch.tensor([prompt + r for r in rows])
    stop = RepetitionStop()
    first: list[int | None] = [None, None]
    for n in range(len(prompt) + 1, ids.shape[1] + 1):
        done = stop(ids[:, :n])
        for b in range(2):
            if done[b] and first[b] is None:
                first[b] = n - len(prompt)
    for b, row in enumerate(rows):
        kept, why = runaway_stop(row, None)
        assert first[b] == (kept if why == "repeat" else None)
