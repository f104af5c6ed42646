"""Real human voices (#19): Debian's Asterisk prompts, 8 kHz telephone speech read by a professional
voice, built into a Common Voice folder by demo/real_speech.py, then decoded, prepared and trained on."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from tests.helpers import run_cli, train_config
from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.data.store import FeatureStore
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.run import prepare
from whisperft.text import normalize_text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))
import real_speech


@pytest.fixture(scope="session")
def asterisk_es(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The Spanish corpus and the builder's report (installs the Debian packages when missing)."""
    root = tmp_path_factory.mktemp("asterisk") / "es"
    return root, real_speech.build("es", root)


def _table(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def _subset(corpus: Path, out: Path, splits: dict[str, list[dict[str, str]]]) -> Path:
    """A Common Voice folder of some of ``corpus``'s rows, sharing its clips."""
    out.mkdir(parents=True)
    (out / "clips").symlink_to(corpus / "clips")
    for split, rows in splits.items():
        lines = ["\t".join(rows[0]), *("\t".join(r.values()) for r in rows)]  # literal, as Common Voice's
        (out / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_the_builder_splits_by_text_and_prepare_catches_what_it_skipped(
    asterisk_es: tuple[Path, dict], tiny_model: Path, tmp_path: Path
) -> None:
    corpus, report = asterisk_es
    splits = {s: _table(corpus / f"{s}.tsv") for s in ("train", "dev", "test")}
    texts = {s: {normalize_text(r["sentence"]) for r in rows} for s, rows in splits.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"] and not texts["dev"] & texts["test"]
    assert len(splits["test"]) >= 80
    long = sum(len(r["sentence"].split()) >= real_speech.LONG_PROMPT_WORDS for r in splits["test"])
    assert long >= 0.7 * len(splits["test"])
    assert 430 <= report["kept"] <= 480 and 20 <= report["minutes"] <= 30, report
    assert report["skipped"] == {"conflicting_text": 2, "empty_text": 2, "no_audio": 4, "note": 7,
                                 "text_too_long": 2, "too_long": 5}  # fmt: skip
    assert "[tono simple]" in {c["text"] for c in report["skipped_clips"]["note"]}

    # prepare's own filters on every row the builder skipped, and two it keeps
    every = _table(corpus / "unfiltered" / "train.tsv")
    skipped = {c["clip"] for clips in report["skipped_clips"].values() for c in clips}
    rows = [r for r in every if r["segment"] in skipped] + splits["train"][:2]
    folder = _subset(corpus, tmp_path / "unfiltered", {"train": rows})
    result = prepare(
        PrepareRequest(str(folder), "es", str(tiny_model), tmp_path / "store", num_proc=1, validation_fraction=0.5)
    )
    got = real_speech.compare(report, result.report)
    # the same rows, except the two that only the builder can judge: a clip named twice with two texts
    # (prepare keeps both, as it keeps any two texts of one audio), and texts too long for this speaker
    # but under prepare's 30 letters/s for anyone
    assert got == {"conflicting_text": {"builder": 2, "prepare": 0}, "empty_text": {"builder": 2, "prepare": 2},
                   "no_audio": {"builder": 4, "prepare": 4}, "note": {"builder": 7, "prepare": 7},
                   "text_too_long": {"builder": 2, "prepare": 0}, "too_long": {"builder": 5, "prepare": 5}}  # fmt: skip
    kept = sum(s["kept"] for s in result.report.values())
    assert kept == 2 + 2 + 2  # the two good rows, the conflicting pair, the texts too long for this voice


def test_real_telephone_clips_decode_prepare_and_train(
    asterisk_es: tuple[Path, dict], tiny_model: Path, tmp_path: Path
) -> None:
    corpus, _ = asterisk_es
    train = sorted(_table(corpus / "train.tsv"), key=lambda r: sf.info(corpus / "clips" / r["path"]).duration)
    test = _table(corpus / "test.tsv")
    # the shortest (a letter), the longest and four between: the rate filter must keep all of them
    picks = {"train": [train[0], train[-1], *train[100:400:75]], "dev": test[:2], "test": test[2:5]}
    for rows in picks.values():
        for r in rows:
            path = corpus / "clips" / r["path"]
            info = sf.info(path)
            assert (info.samplerate, info.channels) == (8000, 1)
            audio = decode_audio(path)
            assert abs(len(audio) - 2 * info.frames) <= 1  # 8 kHz -> 16 kHz, no end cut
            tail = audio[-SAMPLE_RATE // 100 :]  # the last 10 ms is the file's, not padding or silence made up
            assert abs(tail).max() > 0
    folder = _subset(corpus, tmp_path / "few", picks)
    store = tmp_path / "store"
    prepare(PrepareRequest(str(folder), "es", str(tiny_model), store, num_proc=1))
    fs = FeatureStore(store)
    for name, rows in picks.items():
        split = fs.split("validation" if name == "dev" else name)
        assert len(split) == len(rows)
        want = sorted(round(sf.info(corpus / "clips" / x["path"]).duration, 2) for x in rows)
        assert sorted(round(float(d), 2) for d in split.duration) == want
    config = train_config(tmp_path / "train.yaml", tiny_model, store, tmp_path / "run", max_steps=2)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"].pop("audio_context_s")  # the full 30 s window: the longest prompt is 25 s
    config.write_text(yaml.safe_dump({**cfg, "language": "es", "data": {**cfg["data"], "pack": True}}))
    r = run_cli("train", str(config), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
