"""What prepare keeps: a test set that nothing else in the folder can change, and speaking rates a
person can produce (truncated and mislabelled clips are skipped as ``implausible_rate``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devkit.synth import convert
from tests.helpers import write_tsv
from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.data.store import FeatureStore
from whisperft.errors import UsageError, WhisperftError
from whisperft.prepare.filters import RateBounds
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.run import prepare
from whisperft.synth import speak
from whisperft.text import MAX_CHARS_PER_SECOND, MIN_CHARS_PER_SECOND, speech_chars, transcript_note


def _cv(root: Path, wavs: list[tuple[Path, str]], tables: dict[str, list[int]]) -> Path:
    """A Common Voice style folder whose TSVs list the given clips (indices into ``wavs``)."""
    for i, (wav, _) in enumerate(wavs):
        if any(i in rows for rows in tables.values()):
            convert(wav, root / "clips" / f"c{i}.mp3", rate=48000)
    for name, rows in tables.items():
        write_tsv(root / name, [(f"c{i}.mp3", wavs[i][1]) for i in rows])
    return root


def test_clips_listed_in_every_split_stay_in_test(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path):
    """The defect: the same clips in train.tsv, dev.tsv and test.tsv left test empty (WER over nothing)."""
    same = [0, 1, 2]
    cv = _cv(tmp_path / "cv", wavs, {"train.tsv": [*same, 3, 4, 5], "dev.tsv": [*same, 6], "test.tsv": same})
    res = prepare(PrepareRequest(str(cv), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    rep = res.report
    assert rep["test"]["kept"] == 3 and rep["test"]["skipped"] == {}
    # validation is read after test: its copies of test clips leak too, its own clip stays
    assert rep["validation"]["kept"] == 1 and rep["validation"]["skipped"] == {"leaked_into_eval": 3}
    assert rep["train"]["kept"] == 3 and rep["train"]["skipped"] == {"leaked_into_eval": 3}
    store = FeatureStore(res.out)
    test_ids = set(store.split("test").ids)
    assert test_ids == {"c0.mp3", "c1.mp3", "c2.mp3"}
    assert not test_ids & set(store.split("train").ids)
    detail = rep["train"]["examples"]["leaked_into_eval"][0]["detail"]
    assert "test split" in detail


def test_a_test_set_does_not_change_with_the_rest_of_the_folder(
    tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path
) -> None:
    source = _cv(tmp_path / "a", wavs, {"test.tsv": [0, 1]})
    alone = prepare(PrepareRequest(str(source), "sv", str(tiny_model), tmp_path / "s1", num_proc=1))
    crowded = _cv(tmp_path / "b", wavs, {"train.tsv": [1, 0, 2], "dev.tsv": [0, 3], "test.tsv": [0, 1]})
    both = prepare(PrepareRequest(str(crowded), "sv", str(tiny_model), tmp_path / "s2", num_proc=1))
    a, b = FeatureStore(alone.out).split("test"), FeatureStore(both.out).split("test")
    assert a.ids == b.ids and a.texts == b.texts
    assert (a.frames(0) == b.frames(0)).all()


def test_duplicates_inside_a_split_are_still_dropped(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path):
    cv = _cv(tmp_path / "cv", wavs, {"train.tsv": [0, 1, 2, 3], "test.tsv": [4, 4]})
    rep = prepare(PrepareRequest(str(cv), "sv", str(tiny_model), tmp_path / "store", num_proc=1)).report
    assert rep["test"]["kept"] == 1 and rep["test"]["skipped"] == {"duplicate": 1}


@pytest.fixture(scope="module")
def odd_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Common Voice style folder with real clips plus the two kinds crowdsourced data has:
    a 0.2 s truncated mp3 labelled "Avklippt fil.", and a 3 s clip whose label has 400 words."""
    root = tmp_path_factory.mktemp("odd") / "cv"
    clips = root / "clips"
    clips.mkdir(parents=True)
    rows = []
    for i, text in enumerate(["Det regnar i Stockholm idag.", "Ja.", "Tåget går klockan nio."]):
        convert(speak(text, root / f"{i}.wav"), clips / f"ok{i}.mp3", rate=48000)
        rows.append((f"ok{i}.mp3", text))
    full = speak("Avklippt fil.", root / "cut.wav")
    convert(full, clips / "cut.mp3", rate=48000, extra=["-t", "0.2"])
    rows.append(("cut.mp3", "Avklippt fil."))
    three = speak("Hej och välkommen hit.", root / "three.wav")
    subprocess.run(["sox", str(three), str(root / "three3.wav"), "pad", "0", "3", "trim", "0", "3"], check=True)
    convert(root / "three3.wav", clips / "long_label.mp3", rate=48000)
    rows.append(("long_label.mp3", " ".join(["ja", "och", "det", "du"] * 100)))  # 400 one-token words
    write_tsv(root / "train.tsv", rows)
    write_tsv(root / "test.tsv", rows[:1])
    return root


def test_truncated_and_mislabelled_clips_are_skipped(odd_clips: Path, tiny_model: Path, tmp_path: Path) -> None:
    res = prepare(PrepareRequest(str(odd_clips), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    train = res.report["train"]
    assert train["skipped"] == {"implausible_rate": 2, "leaked_into_eval": 1}
    details = {e["row"]: e["detail"] for e in train["examples"]["implausible_rate"]}
    assert details["train.tsv:5"].startswith("11 characters in 0.2")
    assert details["train.tsv:6"].startswith("1000 characters in 3.0")
    kept = set(FeatureStore(res.out).split("train").ids) | set(FeatureStore(res.out).split("validation").ids)
    assert kept == {"ok1.mp3", "ok2.mp3"}  # "Ja." alone in its clip is a real utterance, and is kept


def test_rate_bounds_are_adjustable(odd_clips: Path, tiny_model: Path, tmp_path: Path) -> None:
    def request(out: str, low: float, high: float) -> PrepareRequest:
        rates = {"min_chars_per_second": low, "max_chars_per_second": high}
        return PrepareRequest(str(odd_clips), "sv", str(tiny_model), tmp_path / out, num_proc=1, **rates)

    rep = prepare(request("s1", 0, 1000)).report
    assert "implausible_rate" not in rep["train"]["skipped"]
    with pytest.raises(WhisperftError, match=r"kept no row of test \(1 read\): most were implausible_rate"):
        prepare(request("s2", 12, 30))  # "Ja." is 2 letters in ~0.4 s
    rep = json.loads((tmp_path / "s2" / "prepare_report.json").read_text())  # written all the same
    assert rep["train"]["skipped"]["implausible_rate"] == 4
    with pytest.raises(UsageError, match=r"--min-chars-per-second \(5\) must be below"):
        prepare(request("s3", 5, 2))
    with pytest.raises(UsageError, match="--max-chars-per-second must be positive"):
        prepare(request("s3", 0, -5))


@pytest.mark.parametrize("voice", ["sv", "en"])
def test_real_speech_at_every_espeak_speed_passes_the_default_bounds(tmp_path: Path, voice: str) -> None:
    """From 80 wpm (slow) to 250 wpm (faster than fast talkers), with a second of silence around a lone word."""
    texts = {
        "sv": ["Ja.", "Vi ses på fredag efter jobbet.", "Sjuksköterskan skrev journalanteckningarna."],
        "en": ["Yes.", "We met at the station at nine.", "Internationalization requires responsibility."],
    }
    bounds = RateBounds()
    for speed in (80, 125, 185, 250):
        for i, text in enumerate(texts[voice]):
            audio = decode_audio(speak(text, tmp_path / f"{speed}-{i}.wav", voice=voice, speed=speed))
            padded = len(audio) / SAMPLE_RATE + 2.0
            for seconds in (len(audio) / SAMPLE_RATE, padded):
                assert bounds.problem(text, seconds) is None, (speed, text, seconds)


def test_rate_bounds_are_the_documented_ones() -> None:
    assert (RateBounds().min_chars_per_second, RateBounds().max_chars_per_second) == (
        MIN_CHARS_PER_SECOND,
        MAX_CHARS_PER_SECOND,
    )
    assert RateBounds().problem("Avklippt fil.", 0.2) is not None
    assert RateBounds().problem("ord", 30.0) is not None  # one short word in 30 s
    assert speech_chars("Avklippt fil.") == 11


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("[tono simple]", "[tono simple]"),
        ("Sus saludos [temporales] estan en uso", "[temporales]"),
        ("so [noise] then [laughter]", "[noise]"),
        ("Er schrieb [sic] es so.", "[sic]"),  # not spoken either
        ("(ahooga)", "(ahooga)"),
        ("<noise>", "<noise>"),
        ("{laughter}", "{laughter}"),
        # text, not notes: parentheses and angle brackets inside a sentence, an elision, a long parenthesis
        ("Er wohnt in München (Bayern).", None),
        ("Il est né en (1950).", None),
        ("Les ami(e)s", None),
        ("Pour (emphase)", None),  # a note in the Asterisk script: demo/real_speech.py skips it, prepare cannot tell
        ("Sie sagte: [...] und ging.", None),
        ("period <PERIOD> comma <COMMA>", None),  # GigaSpeech's punctuation tags
        ("au menu poli (ne m'appelez plus, jamais), 4.", None),
        ("Tack så mycket för maten.", None),
    ],
)
def test_a_transcribers_note_is_found(text: str, note: str | None) -> None:
    """prepare skips a transcript with a note as ``annotated_text`` (tests/test_real_speech.py runs it)."""
    assert transcript_note(text) == note
