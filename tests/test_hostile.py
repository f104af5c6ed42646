"""Hostile inputs: every bad row gets a reason, every good row is kept, nothing crashes or hangs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import invoke
from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.sources import safe_join
from whisperft.data.tables import read_table
from whisperft.errors import UsageError
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.run import prepare
from whisperft.text import clean_text, normalize_text

# ---------------------------------------------------------------------------------------------- audio files


def _speech(wavs: list[tuple[Path, str]], i: int = 0) -> np.ndarray:
    return decode_audio(wavs[i][0])


GOOD_VARIANTS = {
    "pcm_u8.wav": {"subtype": "PCM_U8", "rate": 8000},
    "pcm_24.wav": {"subtype": "PCM_24", "rate": 22050},
    "float32.wav": {"subtype": "FLOAT", "rate": 44100},
    "hi_rate.flac": {"subtype": "PCM_24", "rate": 96000},
    "six_channels.wav": {"subtype": "PCM_16", "rate": 48000, "channels": 6},
}


def build_hostile_corpus(root: Path, wavs: list[tuple[Path, str]]) -> tuple[Path, dict[str, int], int]:
    """A manifest mixing good files in odd formats with every kind of bad file. Returns (manifest, reasons, good)."""
    import soxr

    audio_dir = root / "audio"
    audio_dir.mkdir(parents=True)
    rows: list[tuple[str, str]] = []
    base = _speech(wavs, 2)
    for i, (name, spec) in enumerate(GOOD_VARIANTS.items()):
        data = soxr.resample(base, SAMPLE_RATE, spec["rate"]).astype(np.float32)
        if spec.get("channels"):
            data = np.stack([data] * spec["channels"], axis=1)
        sf.write(audio_dir / name, data, spec["rate"], subtype=spec["subtype"])
        rows.append((f"audio/{name}", wavs[3 + i][1]))
    # bad files, each with a valid transcript
    good_mp3 = audio_dir / "src.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wavs[0][0]), "-ar", "48000", str(good_mp3)], check=True)
    raw = good_mp3.read_bytes()
    (audio_dir / "corrupt.mp3").write_bytes(b"\x00\xff" * 50 + raw[len(raw) // 2 : len(raw) // 2 + 40])
    good_mp3.unlink()
    (audio_dir / "zero.wav").write_bytes(b"")
    sf.write(audio_dir / "no_samples.wav", np.zeros((0,), np.float32), SAMPLE_RATE)
    sf.write(audio_dir / "silence.wav", np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE)
    nan = base.copy()
    nan[100:200] = np.nan
    sf.write(audio_dir / "nan.wav", nan, SAMPLE_RATE, subtype="FLOAT")
    _fake_long_wav(audio_dir / "three_hours.wav", hours=3)
    (audio_dir / "notes.mp3").write_text("this is a text file, not audio\n" * 30)
    (audio_dir / "photo.wav").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(2000) + b"\xff\xd9")
    os.symlink("loop_b.wav", audio_dir / "loop_a.wav")
    os.symlink("loop_a.wav", audio_dir / "loop_b.wav")
    bad = {
        "corrupt.mp3": "undecodable",
        "zero.wav": "empty_audio",
        "no_samples.wav": "empty_audio",
        "silence.wav": "silent_audio",
        "nan.wav": "non_finite_audio",
        "three_hours.wav": "too_long",
        "notes.mp3": "undecodable",
        "photo.wav": "undecodable",
        "missing.wav": "missing_file",
        "loop_a.wav": "unreadable_file",
    }
    for k, name in enumerate(bad):
        rows.append((f"audio/{name}", wavs[10 + k % 8][1]))
    # text problems on good audio
    shutil.copy(wavs[1][0], audio_dir / "t.wav")
    for j, text in enumerate(["", "   \t ", "\u0000\u0007\u001b"]):
        shutil.copy(wavs[1][0], audio_dir / f"t{j}.wav")
        rows.append((f"audio/t{j}.wav", text))
    rows.append(("audio/t.wav", "Hej\u0007 där,\u200b med kontrolltecken"))  # cleaned and kept
    shutil.copy(wavs[5][0], audio_dir / "mixed.wav")
    rows.append(("audio/mixed.wav", "Stockholm – Москва – 東京 – שלום עולם"))  # mixed scripts and RTL: kept
    shutil.copy(wavs[6][0], audio_dir / "long_label.wav")
    rows.append(("audio/long_label.wav", "ord " * 600))
    rows.append(("../outside.wav", "Utanför mappen."))
    rows.append(("audio/t.wav", "Hej där, med kontrolltecken"))  # duplicate of the cleaned row above
    reasons = {
        "undecodable": 3,
        "empty_audio": 2,
        "silent_audio": 1,
        "non_finite_audio": 1,
        "too_long": 1,
        "missing_file": 1,
        "unreadable_file": 1,
        "empty_text": 3,
        "label_too_long": 1,
        "unsafe_path": 1,
        "duplicate": 1,
    }
    good = len(GOOD_VARIANTS) + 2
    manifest = root / "hostile.csv"
    with open(manifest, "w", newline="", encoding="utf-8-sig") as fh:  # with a BOM, CRLF line endings
        import csv

        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["path", "sentence"])
        w.writerows(rows)
    return manifest, reasons, good


def _fake_long_wav(path: Path, hours: float) -> None:
    """A wav header announcing `hours` of audio (sparse file, no real disk use)."""
    n = int(hours * 3600 * SAMPLE_RATE) * 2
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + (36 + n).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little"))
        fh.write((1).to_bytes(2, "little") + (1).to_bytes(2, "little") + SAMPLE_RATE.to_bytes(4, "little"))
        fh.write((SAMPLE_RATE * 2).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little"))
        fh.write(b"data" + n.to_bytes(4, "little"))
        fh.truncate(44 + n)


@pytest.mark.slow
def test_hostile_manifest_keeps_good_rows_and_counts_bad_ones(
    tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path
) -> None:
    manifest, reasons, good = build_hostile_corpus(tmp_path / "corpus", wavs)
    from tests.helpers import run_cli

    r = run_cli("prepare", "--lang", "sv", "--source", str(manifest), "--model", str(tiny_model),
                "--out", str(tmp_path / "store"), "--num-proc", "2", timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "store" / "prepare_report.json").read_text())
    kept = sum(s["kept"] for s in report.values())
    skipped: dict[str, int] = {}
    for s in report.values():
        for k, v in s["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
    assert kept == good
    assert skipped == reasons
    for split, s in report.items():  # every row read is kept or skipped, and every row of the table is read
        assert s["read"] == s["kept"] + sum(s["skipped"].values()), split
    assert sum(s["read"] for s in report.values()) == good + sum(reasons.values())
    for reason in reasons:
        assert report["train"]["examples"][reason][0]["row"].startswith("hostile.csv:")
    assert "skipped:" in r.stdout and "undecodable 3" in r.stdout


@pytest.mark.parametrize("name", sorted(GOOD_VARIANTS))
def test_odd_formats_decode(tmp_path: Path, wavs: list[tuple[Path, str]], name: str) -> None:
    import soxr

    spec = GOOD_VARIANTS[name]
    base = _speech(wavs, 2)
    data = soxr.resample(base, SAMPLE_RATE, spec["rate"]).astype(np.float32)
    if spec.get("channels"):
        data = np.stack([data] * spec["channels"], axis=1)
    sf.write(tmp_path / name, data, spec["rate"], subtype=spec["subtype"])
    out = decode_audio(tmp_path / name)
    assert abs(len(out) - len(base)) < 0.02 * SAMPLE_RATE
    assert np.corrcoef(out[: len(base)][: len(out)], base[: len(out)])[0, 1] > 0.9


def test_three_hour_header_is_rejected_without_reading(tmp_path: Path) -> None:
    _fake_long_wav(tmp_path / "long.wav", hours=3)
    with pytest.raises(AudioError) as err:
        decode_audio(tmp_path / "long.wav", max_duration=30)
    assert err.value.reason == "too_long"


def test_symlink_loop(tmp_path: Path) -> None:
    os.symlink("b.wav", tmp_path / "a.wav")
    os.symlink("a.wav", tmp_path / "b.wav")
    with pytest.raises(AudioError) as err:
        decode_audio(tmp_path / "a.wav")
    assert err.value.reason == "unreadable_file"


def test_unreadable_file_is_skipped_and_reported(
    tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path
) -> None:
    """A file without read permission: prepare skips the row, transcribe reports the file, the rest goes on."""
    from tests.helpers import as_ordinary_user, run_cli

    shutil.copy(wavs[0][0], tmp_path / "ok.wav")
    shutil.copy(wavs[1][0], tmp_path / "locked.wav")
    (tmp_path / "locked.wav").chmod(0)
    (tmp_path / "m.csv").write_text(f"path,text\nok.wav,{wavs[0][1]}\nlocked.wav,{wavs[1][1]}\n")
    wrap = as_ordinary_user()
    r = run_cli("prepare", "--lang", "sv", "--source", str(tmp_path / "m.csv"), "--model", str(tiny_model),
                "--out", str(tmp_path / "store"), "--num-proc", "1", wrap=wrap)  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "store" / "prepare_report.json").read_text())
    assert sum(s["kept"] for s in report.values()) == 1 and report["train"]["skipped"] == {"unreadable_file": 1}
    assert "permission denied" in report["train"]["examples"]["unreadable_file"][0]["detail"].lower()
    r = run_cli("transcribe", str(tmp_path / "locked.wav"), str(tmp_path / "ok.wav"), "--model", str(tiny_model),
                "--lang", "sv", "--format", "json", "--output-dir", str(tmp_path / "out"), wrap=wrap)  # fmt: skip
    assert r.returncode == 1 and "locked.wav" in r.stderr and "ermission denied" in r.stderr
    assert (tmp_path / "out" / "ok.json").is_file() and not (tmp_path / "out" / "locked.json").exists()


# ---------------------------------------------------------------------------------------------- manifests


def test_manifest_quirks(tmp_path: Path) -> None:
    p = tmp_path / "m.tsv"
    p.write_bytes('\ufeffpath\tsentence\r\na.wav\t"Hej\tdär"\r\nb.wav\t"rad ett\nrad två"\r\n'.encode())
    cols, rows = read_table(p)
    assert cols == ["path", "sentence"]
    assert [r["sentence"] for _, r in rows] == ["Hej\tdär", "rad ett\nrad två"]
    assert clean_text(rows[1][1]["sentence"]) == "rad ett rad två"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=40)), min_size=1, max_size=8))
def test_csv_manifests_round_trip(tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]]) -> None:
    import csv

    p = tmp_path_factory.mktemp("h") / "m.csv"
    rows = [(a.replace("\x00", ""), b.replace("\x00", "")) for a, b in rows]
    with open(p, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("path", "text"), *rows])
    _, got = read_table(p)
    assert [(r["path"], r["text"]) for _, r in got] == rows


@given(st.text(max_size=60))
def test_normalizer_is_idempotent_and_keeps_marks(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once


def test_normalizer_keeps_combining_marks() -> None:
    assert normalize_text("नमस्ते, दुनिया!") == "नमस्ते दुनिया"
    assert normalize_text("வணக்கம்.") == "வணக்கம்"
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    assert BasicTextNormalizer()("नमस्ते") != "नमस्ते"  # the reason we do not use it


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30))
def test_safe_join_never_escapes(rel: str) -> None:
    base = Path("/data/corpus")
    out = safe_join(base, rel)
    if out is not None and not Path(rel).is_absolute():
        assert str(out) == "/data/corpus" or str(out).startswith("/data/corpus/")


def test_non_utf8_manifest_is_refused_clearly(tmp_path: Path, tiny_model: Path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("path,text\nx.wav,Smörgåsbord\n".encode("latin-1"))
    with pytest.raises(UsageError, match=r"latin1\.csv is not UTF-8 text; re-save it as UTF-8") as err:
        prepare(PrepareRequest(str(p), "sv", str(tiny_model), tmp_path / "s"))
    assert err.value.exit_code == 2
    r = invoke("prepare", "--lang", "sv", "--source", str(p), "--model", str(tiny_model), "--out", str(tmp_path / "s"))
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert r.exit_code == 2 and len(errors) == 1 and "is not UTF-8 text" in errors[0], r.output
    assert "Traceback" not in r.output and not (tmp_path / "s").exists()
