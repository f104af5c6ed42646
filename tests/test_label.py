"""``whisperft label``: recordings without text -> clips cut at pauses, pseudo-labelled, kept or rejected
with a reason, and through ``prepare`` and ``train`` unchanged. Real voices: Debian's Asterisk prompts
(Spanish, read by a person, 8 kHz telephone audio), labelled by bundled base on faster-whisper."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from tests.helpers import invoke, train_config
from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.io import RunLock
from whisperft.label.run import clip_spans
from whisperft.metrics import score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))
import real_speech

PROMPTS = ["agent-loginok", "auth-incorrect", "conf-getpin", "conf-hasleft", "conf-extended", "conf-invalidpin"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Four prompts as they are, one 'long recording' of two more with 1.5 s of silence between them, and a
    file that is not audio; with each recording's true text."""
    real_speech.ensure_packages(["asterisk-core-sounds-es", "asterisk-core-sounds-es-wav"])
    script = {p.name: p for p in real_speech.read_script("es")}
    root = tmp_path_factory.mktemp("unlabelled")
    truth = {}
    for name in PROMPTS[:4]:
        (root / f"{name}.wav").write_bytes(script[name].wav.read_bytes())
        truth[f"{name}.wav"] = script[name].text
    gap = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    parts = [decode_audio(script[n].wav) for n in PROMPTS[4:]]
    sf.write(root / "long.flac", np.concatenate([gap, parts[0], gap, parts[1], gap]), SAMPLE_RATE)
    truth["long.flac"] = " ".join(script[n].text for n in PROMPTS[4:])
    (root / "notes.wav").write_text("not audio")
    return root, truth


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_clips_are_cut_at_pauses_within_the_window() -> None:
    speech = [(1.0, 4.0), (4.5, 20.0), (21.0, 32.0), (35.0, 100.0)]
    spans = clip_spans(speech, 101.0, 30.0)
    assert spans[0] == (0.85, 20.15)  # joined while the clip fits in 30 s; 0.15 s of each pause kept
    assert spans[1] == (20.85, 32.15)  # the next region would not fit: cut at the pause
    assert len(spans) == 2 + 3 and spans[2][0] == 34.85 and spans[-1][1] == 100.15  # 65 s of speech: 3 parts
    assert all(b - a <= 30.0 + 0.3 for a, b in spans)


def test_label_then_prepare_then_train(
    recordings: tuple[Path, dict[str, str]], base_ct2: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Every input is kept or rejected with a reason; the long recording is cut at its pauses; the kept
    labels are close to what was read; the manifest goes through prepare and a 2-step train unchanged."""
    folder, truth = recordings
    out = tmp_path / "labels"
    # clips of at most 6 s: the long recording (two prompts, 7.7 s from first word to last) is cut in its pause
    r = invoke(
        "label", str(folder), "--out", str(out), "--model", str(base_ct2), "--lang", "es", "--max-clip-seconds", "6"
    )
    assert r.exit_code == 0, r.output
    kept, rejected = _rows(out / "manifest.csv"), _rows(out / "rejected.csv")
    sources = {Path(row["source"]).name for row in kept + rejected}
    assert sources == {*truth, "notes.wav"}
    assert [(row["reason"], Path(row["source"]).name) for row in rejected if row["reason"] == "undecodable"] == [
        ("undecodable", "notes.wav")
    ]
    assert all(row["reason"] and row["detail"] for row in rejected)
    long = sorted(
        (row for row in kept + rejected if row["source"].endswith("long.flac")), key=lambda r: float(r["start"])
    )
    assert len(long) == 2 and 4.2 < float(long[0]["end"]) <= float(long[1]["start"]) < 6.0, long  # in the 1.5 s gap
    for row in kept:
        assert (out / row["audio"]).is_file() and 0 < float(row["confidence"]) <= 1 and row["text"]
        assert sf.info(out / row["audio"]).samplerate == SAMPLE_RATE
    assert len(kept) >= 4, rejected
    labels = {}
    for row in sorted(kept, key=lambda row: float(row["start"])):
        name = Path(row["source"]).name
        labels[name] = f"{labels.get(name, '')} {row['text']}".strip()
    names = sorted(labels)
    wer = score(names, [truth[n] for n in names], [labels[n] for n in names], "es")[0]["wer_normalized"]
    assert wer <= 0.4, (wer, labels)  # bundled base on these prompts, before any fine-tuning
    store = tmp_path / "store"
    source = str(out / "manifest.csv")
    r = invoke("prepare", "--lang", "es", "--source", source, "--model", str(tiny_model), "--out", str(store))
    assert r.exit_code == 0, r.output
    cfg = train_config(tmp_path / "t.yaml", tiny_model, store, tmp_path / "run", max_steps=2, batch_size=2)
    data = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**data, "language": "es"}))
    r = invoke("train", str(cfg))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "final" / "config.json").is_file()
    info = json.loads((out / "label.json").read_text())
    assert info["kept"] == len(kept) and sum(info["rejected"].values()) == len(rejected)
    hours = f"{info['seconds_kept'] / 3600:.2f} h transcribed by `{base_ct2}`"
    card = (tmp_path / "run" / "final" / "README.md").read_text()
    assert "### Pseudo-labelled data" in card and hours in card and "at least -0.5" in card, card


def test_bad_input_is_one_clear_line(recordings: tuple[Path, dict[str, str]], base_ct2: Path, tmp_path: Path) -> None:
    """A folder without audio, an English-only teacher asked for Spanish, and a folder another labelling
    process holds: one line each, exit 2, 2 and 1, and nothing written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no audio here")
    cases = [
        (["label", str(empty), "--out", str(tmp_path / "a"), "--model", str(base_ct2), "--lang", "es"], 2,
         "no audio files found in"),
        (["label", str(recordings[0]), "--out", str(tmp_path / "b"), "--model", "bundled:tiny.en", "--lang", "es"], 2,
         "English-only"),
    ]  # fmt: skip
    for args, code, needle in cases:
        r = invoke(*args)
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert r.exit_code == code and len(errors) == 1 and needle in errors[0], r.output
    held = RunLock(tmp_path / "c")
    held.acquire()
    try:
        r = invoke("label", str(recordings[0]), "--out", str(tmp_path / "c"), "--model", str(base_ct2), "--lang", "es")
    finally:
        held.release()
    assert r.exit_code == 1 and "in use by another run" in r.output, r.output
    assert not (tmp_path / "c" / "manifest.csv").exists()
