"""Every source row accounted for (#18, items 1-4): any way of naming a source keeps the same rows,
tables keep their text exactly as written, every row read is kept or skipped with a reason, a split
that keeps nothing is a failure, and a downmix that cancels does not turn speech into silence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli, write_tsv
from whisperft.audio import decode_audio, downmix
from whisperft.data.sources import open_source
from whisperft.data.store import FeatureStore
from whisperft.data.tables import parse_table
from whisperft.errors import WhisperftError
from whisperft.languages import get_language

# ---------------------------------------------------------------------------------- 1. paths, every kind

ODD_NAME = "mina data – Ångström ö"  # spaces, a dash and non-ASCII letters


def _rows(source: str, cwd: Path) -> dict[str, list[tuple[str, str, str]]]:
    """(id, text, what the audio is) per split, as open_source yields them from ``cwd``."""
    here = Path.cwd()
    os.chdir(cwd)
    try:
        src = open_source(source, get_language("sv"))
        out = {}
        for split, rows in src.splits.items():
            got = []
            for r in rows():
                assert r.problem is None, (source, cwd, r.origin, r.problem, r.detail)
                if isinstance(r.audio, bytes):
                    what = f"{len(r.audio)} bytes"
                elif isinstance(r.audio, dict):
                    what = "dict"
                else:
                    assert Path(str(r.audio)).is_file(), (source, r.audio)
                    what = Path(str(r.audio)).resolve().name
                got.append((r.id, str(r.text), what))
            out[split] = got
        return out
    finally:
        os.chdir(here)


def _cv(root: Path, wavs: list[tuple[Path, str]]) -> Path:
    (root / "clips").mkdir(parents=True)
    for i, (w, _) in enumerate(wavs[:4]):
        shutil.copy(w, root / "clips" / f"c{i}.wav")
    write_tsv(root / "train.tsv", [(f"c{i}.wav", t) for i, (_, t) in enumerate(wavs[:3])])
    write_tsv(root / "test.tsv", [("c3.wav", wavs[3][1])])
    return root


def _manifest(root: Path, wavs: list[tuple[Path, str]]) -> Path:
    root.mkdir(parents=True)
    lines = ["path,text,split"]
    for i, (w, t) in enumerate(wavs[:4]):
        shutil.copy(w, root / f"{i}.wav")
        lines.append(f"{i}.wav,{t.replace(',', '')},{'test' if i == 3 else 'train'}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root


def _audiofolder(root: Path, wavs: list[tuple[Path, str]]) -> Path:
    root.mkdir(parents=True)
    lines = ["file_name,text"]
    for i, (w, t) in enumerate(wavs[:3]):
        shutil.copy(w, root / f"{i}.wav")
        lines.append(f'{i}.wav,"{t}"')
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def _saved(root: Path, wavs: list[tuple[Path, str]]) -> Path:
    from datasets import Audio, Dataset, DatasetDict

    ds = Dataset.from_dict({"audio": [str(w) for w, _ in wavs[:3]], "sentence": [t for _, t in wavs[:3]]})
    DatasetDict({"train": ds.cast_column("audio", Audio(sampling_rate=16000))}).save_to_disk(root)
    return root


# kind -> (build the source folder, what --source names inside it: "" for the folder itself)
KINDS: dict[str, tuple[Callable[[Path, list], Path], str]] = {
    "common_voice": (_cv, ""),
    "common_voice_tar": (_cv, "release.tar.gz"),
    "manifest": (_manifest, "m.csv"),
    "audiofolder": (_audiofolder, ""),
    "save_to_disk": (_saved, ""),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_way_of_naming_a_source_keeps_the_same_rows(
    tmp_path: Path, wavs: list[tuple[Path, str]], kind: str
) -> None:
    build, inner = KINDS[kind]
    folder = build(tmp_path / ODD_NAME, wavs)
    if kind == "common_voice_tar":
        with tarfile.open(folder / inner, "w:gz") as tar:  # members as ./train.tsv, ./clips/c0.wav
            for p in sorted(folder.rglob("*")):
                if p.name != inner:
                    tar.add(p, arcname="./" + p.relative_to(folder).as_posix(), recursive=False)
    (tmp_path / "sub").mkdir()
    os.symlink(folder, tmp_path / "link")
    name = f"/{inner}" if inner else ""
    expected = _rows(f"{folder}{name}", tmp_path)
    assert sum(len(v) for v in expected.values()) >= 3
    ways = {
        "relative": (f"{ODD_NAME}{name}", tmp_path),
        "dot": (inner or ".", folder),
        "dot-slash": (f"./{inner}" if inner else "./", folder),
        "dot-dot": (f"../{ODD_NAME}{name}", tmp_path / "sub"),
        "symlinked folder": (f"link{name}", tmp_path),
        "trailing slash": (f"{ODD_NAME}/" if not inner else f"{ODD_NAME}/{inner}", tmp_path),
    }
    for way, (source, cwd) in ways.items():
        assert _rows(source, cwd) == expected, way


def test_prepare_from_inside_the_data_folder(
    tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: ``cd my_data; whisperft prepare --source . --out ../store`` keeps what the absolute
    path keeps (the CLI hands both names to prepare as typed)."""
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    folder = _audiofolder(tmp_path / "my_data", wavs)
    monkeypatch.chdir(folder)
    prepare(PrepareRequest(".", "sv", str(tiny_model), Path("../store"), num_proc=1))
    report = json.loads((tmp_path / "store" / "prepare_report.json").read_text())
    assert sum(s["kept"] for s in report.values()) == 3
    assert all(s["skipped"] == {} for s in report.values())


# ---------------------------------------------------------------------------------- 3. text as written

QUOTED = [  # Common Voice sentences with quotes: one opened and never closed, one closed mid-sentence
    '"Hej sa hon till mig.',
    "Det regnar i Stockholm idag.",
    '"Tack så mycket" för maten.',
    "Vi åker till Göteborg i morgon.",
    'Han sa "ja" och gick.',
]


def _quoted_cv(root: Path, wavs: list[tuple[Path, str]]) -> Path:
    """A Common Voice folder written as Common Voice writes it: tabs, no quoting."""
    (root / "clips").mkdir(parents=True)
    lines = ["client_id\tpath\tsentence\tup_votes"]
    for i, text in enumerate(QUOTED):
        shutil.copy(wavs[i][0], root / "clips" / f"q{i}.wav")
        lines.append(f"c0ffee\tq{i}.wav\t{text}\t2")
    (root / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_common_voice_quotes_are_text(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path) -> None:
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    root = _quoted_cv(tmp_path / "cv", wavs)
    rates = {"min_chars_per_second": 0.01, "max_chars_per_second": 100}
    prepare(PrepareRequest(str(root), "sv", str(tiny_model), tmp_path / "store", num_proc=1, **rates))
    report = json.loads((tmp_path / "store" / "prepare_report.json").read_text())
    assert sum(s["read"] for s in report.values()) == 5
    assert sum(s["kept"] for s in report.values()) == 5
    store = FeatureStore(tmp_path / "store")
    texts = [t for s in store.splits for t in store.split(s).texts]
    assert sorted(texts) == sorted(QUOTED)


def test_quoted_tables_survive_a_quote_that_never_closes() -> None:
    """A CSV/TSV manifest: RFC 4180 quoting where it is well formed, the line as written where not."""
    for delim in (",", "\t"):
        lines = ["path", "text"], *[(f"{i}.wav", t.replace(",", "")) for i, t in enumerate(QUOTED)]
        text = "\n".join(delim.join(f) for f in lines) + "\n"
        text += f'5.wav{delim}"Hej{delim} där"\n6.wav{delim}"rad ett\nrad två"\n'
        columns, rows = parse_table(text, delim)
        assert columns == ["path", "text"]
        assert [r["text"] for _, r in rows] == [*QUOTED, f"Hej{delim} där", "rad ett\nrad två"]
        assert [n for n, _ in rows] == [2, 3, 4, 5, 6, 7, 8]


# ---------------------------------------------------------------------------------- 3. read = kept + skipped


def _assert_accounted(report: dict, rows_in_source: int) -> None:
    for split, s in report.items():
        assert s["read"] == s["kept"] + sum(s["skipped"].values()), split
    assert sum(s["read"] for s in report.values()) == rows_in_source


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_rows_read_are_kept_or_skipped(
    tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path, kind: str
) -> None:
    """Each source kind, with one row that cannot be used: read = kept + skipped, per split and in all."""
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    build, inner = KINDS[kind]
    folder = build(tmp_path / "src", wavs)
    if kind in ("common_voice", "common_voice_tar"):
        with open(folder / "train.tsv", "a") as fh:
            fh.write("c0ffee\tgone.wav\tSaknas.\t2\n")
        n = 5
    elif kind == "manifest":
        with open(folder / "m.csv", "a") as fh:
            fh.write("gone.wav,Saknas.,train\n")
        n = 5
    elif kind == "audiofolder":
        with open(folder / "metadata.csv", "a") as fh:
            fh.write("gone.wav,Saknas.\n")
        n = 4
    else:  # a row whose audio is missing
        from datasets import Audio, Dataset, DatasetDict

        shutil.rmtree(folder)
        ds = Dataset.from_dict({"audio": [*(str(w) for w, _ in wavs[:3]), None], "sentence": ["a", "b", "c", "d"]})
        DatasetDict({"train": ds.cast_column("audio", Audio(sampling_rate=16000))}).save_to_disk(folder)
        n = 4
    if kind == "common_voice_tar":
        with tarfile.open(tmp_path / inner, "w:gz") as tar:
            tar.add(folder, arcname="cv-corpus/sv-SE")
        source = tmp_path / inner
    else:
        source = folder / inner if inner else folder
    res = prepare(PrepareRequest(str(source), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    _assert_accounted(res.report, n)
    assert sum(s["skipped"].get("missing_file", 0) for s in res.report.values()) == 1


# ---------------------------------------------------------------------------------- 2. nothing kept is a failure


def test_prepare_that_keeps_no_training_row_fails(tmp_path: Path, tiny_model: Path) -> None:
    """From the real command: exit 1 and one line, no traceback."""
    (tmp_path / "m.csv").write_text("path,text\n" + "".join(f"gone{i}.wav,Saknas.\n" for i in range(4)))
    r = run_cli("prepare", "--lang", "sv", "--source", str(tmp_path / "m.csv"), "--model", str(tiny_model),
                "--out", str(tmp_path / "store"), "--num-proc", "1")  # fmt: skip
    assert r.returncode == 1
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "train" in lines[0] and "missing_file" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_prepare_that_keeps_no_test_row_fails(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path) -> None:
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    root = _cv(tmp_path / "cv", wavs)
    write_tsv(root / "test.tsv", [("gone.wav", "Saknas."), ("gone2.wav", "Saknas också.")])
    with pytest.raises(WhisperftError) as failed:
        prepare(PrepareRequest(str(root), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    assert failed.value.exit_code == 1
    assert "no row of test (2 read)" in str(failed.value) and "missing_file (2)" in str(failed.value)
    report = json.loads((tmp_path / "store" / "prepare_report.json").read_text())  # still there to read
    assert report["train"]["kept"] + report.get("validation", {"kept": 0})["kept"] == 3


# ---------------------------------------------------------------------------------- 4. stereo that cancels


def _inverted(tmp_path: Path, wav: Path, fmt: str) -> Path:
    """Out-of-phase stereo, as in the issue: sox -M en.wav "|sox en.wav -p vol -1" inverted.wav."""
    out = tmp_path / "inverted.wav"
    subprocess.run(["sox", "-M", str(wav), f"|sox {wav} -p vol -1", str(out)], check=True)
    if fmt != "wav":
        enc = tmp_path / f"inverted.{fmt}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(out), str(enc)], check=True)
        return enc
    return out


@pytest.mark.parametrize("fmt", ["wav", "mp3", "webm"])
def test_a_downmix_that_cancels_uses_the_loudest_channel(
    tmp_path: Path, wavs: list[tuple[Path, str]], fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    """soundfile (wav), soundfile's mp3, and ffmpeg (webm/Opus) all give the speech back, with a warning."""
    mono = decode_audio(wavs[0][0])
    with caplog.at_level("WARNING", logger="whisperft"):
        got = decode_audio(_inverted(tmp_path, wavs[0][0], fmt))
    assert "cancel" in caplog.text
    n = min(len(mono), len(got))
    assert float(np.abs(got).max()) > 0.3
    assert abs(np.corrcoef(got[:n], mono[:n])[0, 1]) > 0.8


def test_downmix_keeps_ordinary_mixes() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16000).astype(np.float32), rng.standard_normal(16000).astype(np.float32)
    both = np.stack([a, b], axis=1)
    np.testing.assert_allclose(downmix(both), both.mean(axis=1))  # independent channels: -3 dB, mixed
    six = np.zeros((16000, 6), np.float32)
    six[:, 2] = a  # 5.1 dialogue in the centre channel: -15.6 dB, mixed
    np.testing.assert_allclose(downmix(six), a / 6, rtol=1e-6)
    np.testing.assert_allclose(downmix(np.stack([a, -a * 0.999], axis=1)), a)  # cancels: the loudest
    assert downmix(np.zeros((100, 2), np.float32)).shape == (100,)


def test_inverted_stereo_is_prepared_and_served(tmp_path: Path, wavs: list[tuple[Path, str]], tiny_model: Path) -> None:
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    inv = _inverted(tmp_path, wavs[0][0], "wav")
    shutil.copy(wavs[1][0], tmp_path / "ok.wav")
    (tmp_path / "m.csv").write_text(f"path,text\ninverted.wav,{wavs[0][1]}\nok.wav,{wavs[1][1]}\n")
    res = prepare(PrepareRequest(str(tmp_path / "m.csv"), "sv", str(tiny_model), tmp_path / "store", num_proc=1))
    assert sum(s["kept"] for s in res.report.values()) == 2, res.report
    from whisperft.serve import read_clip

    assert float(np.abs(read_clip(str(inv), 30, 10)).max()) > 0.3


@pytest.mark.slow
def test_inverted_stereo_is_transcribed_on_both_engines(tmp_path: Path, base_ct2: Path) -> None:
    """The issue's file: the sentence comes out on the PyTorch path and the CTranslate2 path."""
    from tests.helpers import ENGLISH
    from whisperft.metrics import score
    from whisperft.synth import speak

    inv = _inverted(tmp_path, speak(ENGLISH[0], tmp_path / "en.wav", voice="en"), "wav")
    for model in ("bundled:tiny.en", str(base_ct2)):
        r = run_cli("transcribe", str(inv), "--model", model, "--lang", "en")
        assert r.returncode == 0, r.stderr
        assert "cancel" in r.stderr
        assert score(["0"], [ENGLISH[0]], [r.stdout], "en")[0]["wer_normalized"] <= 0.3, (model, r.stdout)
