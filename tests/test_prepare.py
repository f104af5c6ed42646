from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from devkit.synth import convert
from whisperft.data.store import FeatureStore
from whisperft.errors import UsageError
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.run import prepare
from whisperft.text import clean_text


def test_common_voice_folder(tmp_path: Path, cv_folder: Path, tiny_model: Path) -> None:
    res = prepare(PrepareRequest(str(cv_folder), "sv", str(tiny_model), tmp_path / "store", num_proc=2))
    store = FeatureStore(res.out)
    assert set(store.splits) == {"train", "validation", "test"}
    assert [len(store.split(s)) for s in ("train", "validation", "test")] == [16, 2, 2]
    assert res.report["train"]["kept"] == 16 and res.report["train"]["skipped"] == {}
    assert res.report["train"]["hours"] > 0
    on_disk = json.loads((res.out / "prepare_report.json").read_text())
    assert on_disk["test"]["kept"] == 2
    sp = store.split("train")
    from transformers import WhisperTokenizerFast

    tok = WhisperTokenizerFast.from_pretrained(tiny_model)
    assert tok.decode(sp.labels(0).tolist()).strip() == sp.texts[0]


def test_common_voice_tarball_read_in_place(tmp_path: Path, cv_folder: Path, tiny_model: Path) -> None:
    archive = tmp_path / "cv-corpus-sv-SE.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cv_folder, arcname="cv-corpus-20.0/sv-SE")
    res = prepare(PrepareRequest(str(archive), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    assert [res.report[s]["kept"] for s in ("train", "validation", "test")] == [16, 2, 2]


def test_manifest_with_filters_and_reasons(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path) -> None:
    audio = tmp_path / "audio"
    rows = ["file,transcription"]
    for i, (w, text) in enumerate(wavs[:10]):
        convert(w, audio / f"{i}.flac", rate=44100, channels=2)
        rows.append(f'audio/{i}.flac,"{text}"')
    (audio / "broken.mp3").write_bytes(b"ID3\x03\x00garbage" * 10)
    (audio / "zero.wav").write_bytes(b"")
    rows += [
        "audio/broken.mp3,Trasig fil.",
        "audio/zero.wav,Tom fil.",
        "audio/missing.wav,Saknas.",
        "audio/0.flac,   ",
        '../../etc/passwd,"Utanför."',
        f'audio/1.flac,"{wavs[1][1]}"',  # duplicate row
        'audio/2.flac,"' + "lång " * 1000 + '"',
    ]
    manifest = tmp_path / "train.csv"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    res = prepare(PrepareRequest(str(manifest), "sv", str(tiny_model), tmp_path / "store", num_proc=2))
    rep = res.report
    assert rep["train"]["kept"] + rep["validation"]["kept"] == 10
    assert rep["validation"]["kept"] >= 1
    skipped = rep["train"]["skipped"]
    assert skipped == {
        "undecodable": 1,
        "empty_audio": 1,
        "missing_file": 1,
        "empty_text": 1,
        "unsafe_path": 1,
        "duplicate": 1,
        "label_too_long": 1,
    }
    assert rep["train"]["examples"]["missing_file"][0]["row"] == "train.csv:4" or "train.csv" in json.dumps(
        rep["train"]["examples"]["missing_file"]
    )


def test_label_limit_comes_from_model_config(tmp_path: Path, wavs: list[tuple[Path, str]]) -> None:
    from transformers import AutoConfig

    from devkit.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "m")
    cfg = AutoConfig.from_pretrained(model)
    cfg.max_target_positions = 12
    cfg.save_pretrained(model)
    manifest = tmp_path / "m.jsonl"
    lines = [json.dumps({"audio": str(w), "text": t}) for w, t in wavs[:6]]
    manifest.write_text("\n".join(lines))
    res = prepare(PrepareRequest(str(manifest), "sv", str(model), tmp_path / "store", num_proc=1))
    total_kept = res.report["train"]["kept"] + res.report["validation"]["kept"]
    too_long = res.report["train"]["skipped"].get("label_too_long", 0) + res.report["validation"]["skipped"].get(
        "label_too_long", 0
    )
    assert too_long > 0 and total_kept + too_long == 6


def test_audiofolder_and_save_to_disk(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path) -> None:
    folder = tmp_path / "af"
    for split, items in (("train", wavs[:4]), ("test", wavs[4:6])):
        (folder / split).mkdir(parents=True)
        lines = ["file_name,text"]
        for i, (w, t) in enumerate(items):
            (folder / split / f"{i}.wav").write_bytes(w.read_bytes())
            lines.append(f'{i}.wav,"{t}"')
        (folder / split / "metadata.csv").write_text("\n".join(lines))
    res = prepare(PrepareRequest(str(folder), "sv", str(tiny_model), tmp_path / "s1", num_proc=1))
    assert res.report["test"]["kept"] == 2 and res.report["train"]["kept"] + res.report["validation"]["kept"] == 4

    from datasets import Audio, Dataset, DatasetDict

    ds = Dataset.from_dict({"audio": [str(w) for w, _ in wavs[:3]], "sentence": [t for _, t in wavs[:3]]})
    ds = ds.cast_column("audio", Audio(sampling_rate=16000))
    DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(tmp_path / "disk")
    res = prepare(PrepareRequest(str(tmp_path / "disk"), "sv", str(tiny_model), tmp_path / "s2", num_proc=1))
    # the test row repeats a training row: test keeps it, and train drops its copy as a leak
    assert res.report["test"]["kept"] == 1 and res.report["test"]["skipped"] == {}
    assert res.report["train"]["kept"] + res.report["validation"]["kept"] == 2
    assert res.report["train"]["skipped"] == {"leaked_into_eval": 1}


def test_hub_source_uses_parquet_conversion_for_fleurs(
    tmp_path: Path,
    wavs: list[tuple[Path, str]],
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    import datasets

    secret = "hf_NotARealTokenButSecret42"
    monkeypatch.setenv("HF_TOKEN", secret)
    caplog.set_level(logging.DEBUG)

    calls = []

    def table(items: list[tuple[Path, str]]) -> datasets.Dataset:
        return datasets.Dataset.from_dict(
            {
                "audio": [{"bytes": w.read_bytes(), "path": w.name} for w, _ in items],
                "raw_transcription": [t for _, t in items],
                "transcription": ["x"] * len(items),
            }
        ).cast_column("audio", datasets.Audio(decode=False))

    def fake_load_dataset(name: str, **kwargs: object) -> datasets.DatasetDict:  # the Hub's network boundary
        calls.append((name, kwargs))
        return datasets.DatasetDict(
            {"train": table(wavs[:3]), "validation": table(wavs[3:4]), "test": table(wavs[4:5])}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    res = prepare(PrepareRequest(None, "sv", str(tiny_model), tmp_path / "s", num_proc=1))
    name, kwargs = calls[0]
    assert name == "google/fleurs" and kwargs["revision"] == "refs/convert/parquet" and kwargs["data_dir"] == "sv_se"
    # the Hub token goes to the Hub and nowhere else: not in logs, not in any file written
    assert kwargs["token"] == secret
    assert secret not in caplog.text
    assert not [p for p in res.out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert res.report["train"]["kept"] == 3
    store = FeatureStore(res.out)
    assert store.split("test").texts == [wavs[4][1]]  # raw_transcription, with case and punctuation


def test_usage_errors(tmp_path: Path, tiny_model: Path, tiny_en_model: Path, cv_folder: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        prepare(PrepareRequest(str(tmp_path / "nope"), "sv", str(tiny_model), tmp_path / "s"))
    bad = tmp_path / "m.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(UsageError, match="no audio column"):
        prepare(PrepareRequest(str(bad), "sv", str(tiny_model), tmp_path / "s"))
    with pytest.raises(UsageError, match="English-only"):
        prepare(PrepareRequest(str(cv_folder), "sv", str(tiny_en_model), tmp_path / "s"))
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes("path,text\nx.wav,Hej på dig\n".encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8"):
        prepare(PrepareRequest(str(latin1), "sv", str(tiny_model), tmp_path / "s"))


def test_clean_text() -> None:
    assert clean_text("  Hej\u0000 där\t\r\n du ") == "Hej där du"
    assert clean_text(None) == ""
