"""Shared fixtures: the real tokenizer in tiny random models, and real speech from espeak-ng."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("WHISPERFT_CACHE", tempfile.mkdtemp(prefix="whisperft-test-cache-"))

from devkit.synth import convert
from devkit.tiny import make_tiny_model
from tests.helpers import SWEDISH, learning_config, run_cli, write_tsv
from whisperft.synth import speak


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer multilingual Whisper with random weights and the real tokenizer."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_en_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer English-only Whisper (*.en vocabulary) with random weights."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-en", multilingual=False)


@pytest.fixture(scope="session")
def base_ct2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multilingual base as faster-whisper ships it: the bundled parts joined into one CTranslate2 folder."""
    from whisperft.models.bundled import source_files

    parts, meta, _ = source_files("base")
    out = tmp_path_factory.mktemp("base-ct2")
    with open(out / "model.bin", "wb") as fh:
        for p in parts:
            fh.write(p.read_bytes())
    for f in ("tokenizer.json", "config.json", "vocabulary.json"):
        (out / f).write_bytes((meta / f).read_bytes())
    return out


@pytest.fixture(scope="session")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    """espeak-ng Swedish speech, one 22.05 kHz wav per sentence."""
    root = tmp_path_factory.mktemp("wav")
    return [(speak(s, root / f"s{i:02d}.wav", voice="sv"), s) for i, s in enumerate(SWEDISH)]


@pytest.fixture(scope="session")
def cv_folder(tmp_path_factory: pytest.TempPathFactory, wavs: list[tuple[Path, str]]) -> Path:
    """A Common Voice style release: clips/*.mp3 at 48 kHz stereo, train/dev/test TSVs."""
    root = tmp_path_factory.mktemp("cv") / "sv-SE"
    rows = []
    for i, (wav, text) in enumerate(wavs):
        name = f"common_voice_sv-SE_{i:04d}.mp3"
        convert(wav, root / "clips" / name, rate=48000, channels=2)
        rows.append((name, text))
    write_tsv(root / "train.tsv", rows[:16])
    write_tsv(root / "dev.tsv", rows[16:18])
    write_tsv(root / "test.tsv", rows[18:])
    return root


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, cv_folder: Path, tiny_model: Path) -> Path:
    """cv_folder prepared for the tiny model by the real CLI; read-only (copy it to change it)."""
    out = tmp_path_factory.mktemp("tiny-store") / "sv"
    r = run_cli("prepare", "--lang", "sv", "--source", str(cv_folder), "--model", str(tiny_model), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "train: read 16, kept 16" in r.stdout
    return out


@pytest.fixture(scope="session")
def store(tiny_store: Path) -> Path:
    """``tiny_store`` under the name the CLI and training tests use: a read-only feature store."""
    return tiny_store


@pytest.fixture(scope="session")
def long_wav(tmp_path_factory: pytest.TempPathFactory, wavs: list[tuple[Path, str]]) -> Path:
    """About 70 s of speech in one file, for long-form transcription."""
    root = tmp_path_factory.mktemp("long")
    parts = [str(w) for w, _ in wavs] * 3
    out = root / "long.wav"
    subprocess.run(["sox", *parts, str(out), "rate", "16000"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_store: Path, tiny_model: Path) -> Path:
    """A tiny model trained 200 steps on 16 Swedish utterances (4 s audio context), evaluated on its own
    training set: the run folder (final/, checkpoints/). Read-only; copy it to change it."""
    root = tmp_path_factory.mktemp("run")
    cfg = learning_config(
        root / "learn.yaml",
        model=tiny_model,
        store=tiny_store,
        output_dir=str(root / "run"),
        max_steps=200,
        eval_steps=100,
        save_steps=100,
        data={"eval_split": "train"},
    )
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    return root / "run"


@pytest.fixture(scope="session")
def have_tools() -> None:
    for tool in ("espeak-ng", "ffmpeg", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: run `make sysdeps`")
