"""Shared fixtures: the real tokenizer in tiny random models, and real speech from espeak-ng."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("WHISPERFT_CACHE", tempfile.mkdtemp(prefix="whisperft-test-cache-"))

from devkit.synth import convert
from devkit.tiny import make_tiny_model
from whisperft.synth import speak

SWEDISH = [
    "Hej, jag heter Anna.",
    "Det regnar i Stockholm idag.",
    "Klockan är tre på eftermiddagen.",
    "Vi åker till Göteborg i morgon.",
    "Jag tycker mycket om kaffe.",
    "Barnen leker i parken.",
    "Tåget är försenat med tio minuter.",
    "Hon läser en bok om Sverige.",
    "Min bror bor i Malmö.",
    "Vädret är fint i dag.",
    "Butiken öppnar klockan nio.",
    "Kan du hjälpa mig?",
    "Vi ses på fredag.",
    "Katten sover på soffan.",
    "Han dricker te varje morgon.",
    "Det kostar fyrtio kronor.",
    "Bussen går från torget.",
    "Jag har två systrar.",
    "Sjön är kall på våren.",
    "Tack så mycket för maten.",
]


ENGLISH = [  # spoken by espeak-ng in the tests of real (bundled) models
    "The sun is shining and the sky is blue.",
    "Please send me the report by Friday.",
    "My brother lives in a small house near the river.",
    "We are going to the cinema tonight.",
    "Can you tell me where the train station is?",
    "She bought three apples and a loaf of bread.",
]


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


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["client_id", "path", "sentence", "up_votes"])
        for p, s in rows:
            w.writerow(["c0ffee", p, s, 2])


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
def long_wav(tmp_path_factory: pytest.TempPathFactory, wavs: list[tuple[Path, str]]) -> Path:
    """About 70 s of speech in one file, for long-form transcription."""
    root = tmp_path_factory.mktemp("long")
    parts = [str(w) for w, _ in wavs] * 3
    out = root / "long.wav"
    subprocess.run(["sox", *parts, str(out), "rate", "16000"], check=True, capture_output=True)
    return out


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 900, wrap: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run the real ``whisperft`` command as a user would (``wrap``: a command that runs it, like setpriv)."""
    return subprocess.run([*wrap, *cli_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def invoke(*args: str) -> Result:
    """The CLI in this process (Typer's runner): its parsing, error mapper and exit code, without a new
    process paying torch's and transformers' imports (4-9 s each). What the CLI sets for the whole
    process (loggers, warning filters, transformers' verbosity, environment defaults) is put back after."""
    from transformers.utils import logging as hf_logging

    from whisperft import cli

    loggers = [
        (lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, ("whisperft", "accelerate"))
    ]
    verbosity, bars, env = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), dict(os.environ)
    state = dict(cli._state)
    try:
        with warnings.catch_warnings():
            return CliRunner().invoke(cli.app, list(args))
    finally:
        cli._state.update(state)
        for lg, handlers, level, propagate in loggers:
            lg.handlers[:], lg.propagate = handlers, propagate
            lg.setLevel(level)
        hf_logging.set_verbosity(verbosity)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
        os.environ.clear()
        os.environ.update(env)


def train_config(path: Path, model: Path, store: Path, out: Path, data: dict | None = None, **train: object) -> Path:
    """A small training config for the tiny model: 4 s windows, no evaluation unless asked."""
    cfg = {
        "model": {"name": str(model), "audio_context_s": 4.0},
        "language": "sv",
        "data": {"store": str(store), "num_workers": 0, **(data or {})},
        "train": {"output_dir": str(out), "learning_rate": 3e-3, "warmup_steps": 2, "batch_size": 4,
                  "eval_steps": 1000, "logging_steps": 1, **train},
        "eval": {"max_new_tokens": 8},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    return path


def learning_config(path: Path, **train: object) -> Path:
    """A training config for the tiny model on ``store``: a 4 s audio context unless asked."""
    data = {
        "model": {"name": str(train.pop("model")), "audio_context_s": train.pop("audio_context_s", 4.0)},
        "language": "sv",
        "data": {"store": str(train.pop("store")), "num_workers": 0, **train.pop("data", {})},  # type: ignore[dict-item]
        "train": {"learning_rate": 3e-3, "warmup_steps": 10, "batch_size": 8, "logging_steps": 10, **train},
        "eval": {"batch_size": 16, "max_new_tokens": 24},
    }
    path.write_text("# whisperft train " + path.name + "\n" + yaml.safe_dump(data))
    return path


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


def cli_command() -> list[str]:
    """The installed ``whisperft`` script of this venv (``python -m whisperft.cli`` without one)."""
    exe = Path(sys.executable).with_name("whisperft")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "whisperft.cli"]


def as_ordinary_user() -> tuple[str, ...]:
    """A prefix that runs a command without root's power to read any file.

    CI runs as root, and root reads a chmod 000 file. Dropping CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set before exec makes permissions bite, as
    they do for every ordinary user.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("running as root without setpriv (util-linux): cannot test file permissions")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search")


@pytest.fixture(scope="session")
def have_tools() -> None:
    for tool in ("espeak-ng", "ffmpeg", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: run `make sysdeps`")
