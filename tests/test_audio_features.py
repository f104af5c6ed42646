from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from transformers import WhisperFeatureExtractor

from devkit.synth import convert
from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.store import Example, FeatureStore, Split, SplitWriter, write_meta
from whisperft.features import N_FRAMES, log_mel_batch, num_frames, pad_features


def test_decodes_common_voice_mp3_to_mono_16k(cv_folder: Path) -> None:
    clip = next((cv_folder / "clips").glob("*.mp3"))
    info = sf.info(clip)
    assert (info.samplerate, info.channels) == (48000, 2)
    audio = decode_audio(clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < len(audio) / SAMPLE_RATE < 5


@pytest.mark.parametrize(("suffix", "rate", "channels"), [(".flac", 44100, 2), (".wav", 8000, 1), (".ogg", 22050, 6)])
def test_decodes_other_formats_rates_and_channels(
    tmp_path: Path, wavs: list[tuple[Path, str]], suffix: str, rate: int, channels: int
) -> None:
    src, _ = wavs[0]
    ref = decode_audio(src)
    out = convert(src, tmp_path / f"x{suffix}", rate=rate, channels=channels)
    audio = decode_audio(out)
    assert abs(len(audio) - len(ref)) < 0.05 * SAMPLE_RATE


def test_ffmpeg_fallback_for_formats_soundfile_cannot_read(tmp_path: Path, wavs: list[tuple[Path, str]]) -> None:
    src, _ = wavs[1]
    m4a = convert(src, tmp_path / "x.m4a", rate=44100, channels=1)
    with pytest.raises(sf.LibsndfileError):
        sf.read(m4a)
    assert len(decode_audio(m4a)) > SAMPLE_RATE // 2
    assert len(decode_audio(m4a.read_bytes())) > SAMPLE_RATE // 2


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty_audio"),
        (lambda p: p.write_text("this is not audio at all\n" * 20), "undecodable"),
        (lambda p: None, "missing_file"),
    ],
)
def test_bad_audio_has_a_reason(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "bad.mp3"
    make(p)
    with pytest.raises(AudioError) as err:
        decode_audio(p)
    assert err.value.reason == reason


def test_too_long_is_rejected_from_the_header(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    sf.write(p, np.zeros(SAMPLE_RATE * 40, dtype=np.float32) + 0.1, SAMPLE_RATE)
    with pytest.raises(AudioError) as err:
        decode_audio(p, max_duration=30)
    assert err.value.reason == "too_long"


def test_log_mel_matches_whisper_feature_extractor(wavs: list[tuple[Path, str]]) -> None:
    fe = WhisperFeatureExtractor(feature_size=80)
    waves = [decode_audio(w) for w, _ in wavs[:4]]
    rng = np.random.default_rng(0)
    waves.append((rng.standard_normal(SAMPLE_RATE * 30) * 0.1).astype(np.float32))  # a full window
    items = log_mel_batch(waves)
    for wave, (frames, pad) in zip(waves, items, strict=True):
        ref = fe(wave, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features[0]
        assert frames.shape == (num_frames(len(wave)), 80)
        mine = pad_features([(frames, pad)])[0].numpy()
        np.testing.assert_allclose(mine, ref, atol=1e-4)
        # float16 storage changes features by far less than their spread
        mine16 = pad_features([(frames.astype(np.float16), pad)])[0].numpy()
        assert np.abs(mine16 - ref).max() < 5e-3


def test_store_round_trip_is_compact(tmp_path: Path, wavs: list[tuple[Path, str]]) -> None:
    waves = [decode_audio(w) for w, _ in wavs[:5]]
    w = SplitWriter(tmp_path / "train", 80)
    for i, (wave, (frames, pad)) in enumerate(zip(waves, log_mel_batch(waves), strict=True)):
        w.add(Example(f"u{i}", f"text {i}", frames, pad, np.arange(i + 1, dtype=np.int32), len(wave) / SAMPLE_RATE))
    w.close()
    write_meta(tmp_path, {"n_mels": 80, "splits": ["train"]})
    (tmp_path / "_COMPLETE").write_text("{}")
    split = FeatureStore(tmp_path).split("train")
    assert len(split) == 5 and split.texts[3] == "text 3"
    assert split.labels(2).tolist() == [0, 1, 2]
    padded_bytes = len(split) * 80 * N_FRAMES * 4
    stored = sum(f.stat().st_size for f in (tmp_path / "train").iterdir())
    assert padded_bytes / stored > 10


def test_incomplete_split_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(Exception, match="incomplete"):
        Split(tmp_path / "train", 80)


def test_espeak_and_tools_are_real(have_tools: None, tmp_path: Path) -> None:
    out = tmp_path / "x.wav"
    subprocess.run(["espeak-ng", "-v", "sv", "-w", str(out), "hej"], check=True)
    assert sf.info(out).frames > 1000
