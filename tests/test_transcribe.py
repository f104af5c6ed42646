"""Transcription building blocks: chunking at pauses, silence, subtitle formats."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import run_cli
from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.transcribe.chunking import speech_chunks
from whisperft.transcribe.subtitles import Segment, Transcript, format_timestamp, render


def test_chunks_fit_the_window_and_cover_the_speech(long_wav: Path) -> None:
    audio = decode_audio(long_wav)
    chunks = speech_chunks(audio, max_seconds=30)
    assert len(chunks) >= 3
    assert all(0 < b - a <= 30 * SAMPLE_RATE for a, b in chunks)
    assert all(b1 <= a2 + 0.5 * SAMPLE_RATE for (_, b1), (a2, _) in itertools.pairwise(chunks))
    covered = sum(b - a for a, b in chunks)
    assert covered > 0.8 * len(audio)


def test_silence_gives_no_chunks() -> None:
    assert speech_chunks(np.zeros(SAMPLE_RATE * 600, np.float32)) == []
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(SAMPLE_RATE * 60) * 1e-4).astype(np.float32)  # -80 dBFS noise floor
    assert speech_chunks(hiss) == []


def test_a_long_unbroken_sound_is_cut_below_the_limit() -> None:
    t = np.arange(SAMPLE_RATE * 75) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))).astype(np.float32)
    chunks = speech_chunks(tone, max_seconds=30)
    assert len(chunks) == 3 and all(b - a <= 30 * SAMPLE_RATE for a, b in chunks)
    assert chunks[0][0] == 0 and chunks[-1][1] == len(tone)


def test_formats() -> None:
    t = Transcript("a.wav", "sv", 4.0, "Hej. Då.", [Segment(0.0, 1.5, "Hej."), Segment(1.5, 3.25, "Då.")])
    assert render(t, "srt") == "1\n00:00:00,000 --> 00:00:01,500\nHej.\n\n2\n00:00:01,500 --> 00:00:03,250\nDå.\n"
    assert render(t, "vtt").startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHej.\n")
    assert render(t, "txt") == "Hej. Då.\n"
    assert '"segments"' in render(t, "json")


def cue_times(t: Transcript) -> list[tuple[int, int]]:
    """(start, end) in milliseconds of every cue, read back from the SRT, the VTT and the JSON ``t`` renders to."""
    out = []
    for fmt, sep in (("srt", ","), ("vtt", ".")):
        for line in render(t, fmt).splitlines():
            if " --> " in line:
                a, b = (_milliseconds(x, sep) for x in line.split(" --> "))
                out.append((a, b))
    out += [(round(s["start"] * 1000), round(s["end"] * 1000)) for s in json.loads(render(t, "json"))["segments"]]
    return out


def _milliseconds(stamp: str, sep: str) -> int:
    h, m, rest = stamp.split(":")
    s, ms = rest.split(sep)
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


times = st.floats(min_value=-1, max_value=40, allow_nan=False)


@given(st.floats(min_value=0.001, max_value=35, allow_nan=False), st.lists(st.tuples(times, times), max_size=5))
def test_no_cue_starts_or_ends_after_the_audio(duration: float, spans: list[tuple[float, float]]) -> None:
    """Issue #18, item 5: whatever times an engine gives, no cue in any format lies past the audio's end
    or ends before it starts (a 0.3 s clip's cue ended at 2.0 s on the CTranslate2 path)."""
    t = Transcript("a.wav", "en", round(duration, 3), "x", [Segment(a, b, f"w{i}") for i, (a, b) in enumerate(spans)])
    cues = cue_times(t)
    assert len(cues) == 3 * len(spans)
    assert all(0 <= a <= b <= round(t.duration * 1000) for a, b in cues), (t.duration, cues)
    assert all(0 <= s.start <= s.end <= t.duration for s in t.segments)
    assert render(t, "txt") == "x\n"


@given(st.floats(min_value=0, max_value=360_000, allow_nan=False))
def test_timestamps_round_trip(seconds: float) -> None:
    text = format_timestamp(seconds)
    h, m, rest = text.split(":")
    s, ms = rest.split(",")
    assert len(ms) == 3 and 0 <= int(m) < 60 and 0 <= int(s) < 60
    back = int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000
    assert abs(back - seconds) <= 0.0005 + 1e-9


@pytest.mark.slow
def test_silence_and_tiny_clips_through_the_cli(tmp_path: Path, tiny_model: Path) -> None:
    import soundfile as sf

    sf.write(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE * 600, np.float32), SAMPLE_RATE)
    sf.write(tmp_path / "blip.wav", (np.random.default_rng(1).standard_normal(1600) * 0.1).astype(np.float32), 16000)
    r = run_cli("transcribe", str(tmp_path / "silence.wav"), str(tmp_path / "blip.wav"), "--model", str(tiny_model),
                "--lang", "sv", "--format", "json", "--output-dir", str(tmp_path / "out"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    silence = json.loads((tmp_path / "out" / "silence.json").read_text())
    assert silence["text"] == "" and silence["segments"] == [] and silence["duration"] == 600.0
    assert (tmp_path / "out" / "blip.json").is_file()


def test_cer_is_the_headline_for_spaceless_scripts() -> None:
    from whisperft.languages import get_language
    from whisperft.metrics import score

    metrics, utts = score(["a"], ["今日は良い天気です"], ["今日は悪い天気です"], "ja")
    assert get_language("ja").spaceless and not get_language("sv").spaceless
    assert metrics["cer"] == pytest.approx(1 / 9) and utts[0].char_errors == 1
    assert metrics["wer"] == 1.0  # one "word" without spaces: why WER says nothing here
