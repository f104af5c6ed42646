"""``whisperft serve`` in a real browser (Debian's chromium driven by Playwright), on real weights.

The server is the real command, started as a user starts it: bundled base in CTranslate2 format,
compared with bundled base through PyTorch. Audio is espeak-ng speech uploaded through the page.
"""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import ENGLISH, cli_command, invoke, run_cli
from whisperft.data.tables import read_table
from whisperft.metrics import score
from whisperft.synth import speak

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "demo"))
import real_speech

gr = pytest.importorskip("gradio", reason="the ui extra is part of the test environment (requirements/lock.txt)")
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--disable-domain-reliability",
    "--metrics-recording-only",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-audio")
    files = {"hello": speak(ENGLISH[0], root / "hello.wav", voice="en")}
    files["second"] = speak(ENGLISH[1], root / "second.wav", voice="en")
    files["broken"] = root / "broken.wav"
    files["broken"].write_bytes(b"RIFF, but not really: a text file renamed to .wav\n" * 20)
    files["silent"] = root / "silent.wav"
    sf.write(files["silent"], np.zeros(32_000, dtype=np.float32), 16_000)
    files["huge"] = root / "huge.wav"  # 1.9 MB: over the server's 1 MB cap
    sf.write(files["huge"], np.random.default_rng(0).uniform(-0.1, 0.1, 60 * 16_000), 16_000, subtype="PCM_16")
    return files


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory, base_ct2: Path) -> Path:
    """A ``whisperft label`` folder: three Asterisk prompts (a real Spanish voice) labelled by bundled base."""
    real_speech.ensure_packages(["asterisk-core-sounds-es", "asterisk-core-sounds-es-wav"])
    script = {p.name: p for p in real_speech.read_script("es")}
    root = tmp_path_factory.mktemp("review")
    (root / "in").mkdir()
    for name in ("conf-getpin", "conf-hasleft", "auth-incorrect"):
        (root / "in" / f"{name}.wav").write_bytes(script[name].wav.read_bytes())
    r = invoke("label", str(root / "in"), "--out", str(root / "labels"), "--model", str(base_ct2), "--lang", "es")
    assert r.exit_code == 0, r.output
    return root / "labels"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, base_ct2: Path, labels: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("serve")
    port = _free_port()
    args = ["serve", "--model", str(base_ct2), "--compare", "bundled:base", "--port", str(port),
            "--dataset-dir", str(root / "recorded"), "--max-upload-mb", "1", "--lang", "en",
            "--review", str(labels)]  # fmt: skip
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*cli_command(), *args], cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while _status_or_none(url) != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"serve did not start:\n{(root / 'server.log').read_text()[-3000:]}")
        time.sleep(1)
    yield url, root
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    assert "Traceback" not in (root / "server.log").read_text()


def _status_or_none(url: str) -> int | None:
    try:
        return _status(url)
    except OSError:
        return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is missing: run `make sysdeps`")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: tuple[str, Path]) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.set_default_timeout(120_000)
    pg.goto(server[0], wait_until="load")
    pg.locator("#transcribe").wait_for()  # the app has rendered (an idle network is not a given: gradio polls)
    yield pg
    pg.close()


def _upload(page: Any, component: str, path: Path) -> None:
    page.locator(f"#{component} button[aria-label='Upload file']").click()
    page.locator(f"#{component} input[type=file]").set_input_files(str(path))
    page.locator(f"#{component} button[aria-label='Clear']").wait_for()  # the upload has landed


def _textarea(page: Any, elem: str) -> str:
    page.wait_for_function(f"document.querySelector('#{elem} textarea').value.length > 0")
    return str(page.locator(f"#{elem} textarea").input_value())


def test_transcribe_and_compare_in_the_browser(page: Any, speech: dict[str, Path], tmp_path: Path) -> None:
    _upload(page, "audio", speech["hello"])
    page.click("#transcribe")
    texts = [_textarea(page, "transcript-0"), _textarea(page, "transcript-1")]
    for text in texts:  # both models, side by side, with timestamps
        assert text.startswith("[00:00.000 → "), text
        assert score(["u"], [ENGLISH[0]], [text.split("] ", 1)[1]], "en")[0]["wer_normalized"] <= 0.15, text
    for i in (0, 1):
        assert " s for 2." in page.locator(f"#timing-{i}").inner_text()
    link = page.locator("#srt-0 a").first
    srt = page.request.get(link.get_attribute("href")).text()
    assert srt.startswith("1\n00:00:00,000 --> 00:00:0"), srt
    page.screenshot(path=str(tmp_path / "transcribe.png"), full_page=True)


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ("broken", "not audio that whisperft can decode"),
        ("silent", "The recording is silent"),
        ("huge", "exceed the maximum allowed size"),  # gradio's own check, from --max-upload-mb
    ],
)
def test_bad_input_gets_an_error_in_the_page(page: Any, speech: dict[str, Path], clip: str, message: str) -> None:
    page.locator("#audio button[aria-label='Upload file']").click()
    page.locator("#audio input[type=file]").set_input_files(str(speech[clip]))
    if clip != "huge":  # an oversized upload is refused before the button can be pressed
        page.locator("#audio button[aria-label='Clear']").wait_for()
        page.click("#transcribe")
    page.get_by_text(message).first.wait_for(timeout=60_000)
    assert page.locator("#transcript-0 textarea").input_value() == ""


def test_record_a_dataset_that_prepare_accepts(
    page: Any, server: tuple[str, Path], speech: dict[str, Path], tiny_model: Path, tmp_path: Path
) -> None:
    folder = server[1] / "recorded"
    page.get_by_role("tab", name="Record a dataset").click()
    for clip, sentence, split in (("hello", ENGLISH[0], "train"), ("second", ENGLISH[1], "dev")):
        _upload(page, "clip", speech[clip])
        page.fill("#sentence textarea", f"  {sentence}\n")
        page.get_by_label(split, exact=True).check()
        page.click("#add")
        page.get_by_text(f"to {split}.").first.wait_for()
    status = page.locator("#dataset-status").inner_text()
    assert "train 1 clip (2." in status and "dev 1 clip (2." in status, status
    assert f"prepare --lang en --source {folder}" in page.locator("body").inner_text()
    page.screenshot(path=str(tmp_path / "record.png"), full_page=True)

    _, rows = read_table(folder / "train.tsv")
    assert [r["sentence"] for _, r in rows] == [ENGLISH[0]]
    assert sf.info(str(folder / "clips" / rows[0][1]["path"])).samplerate == 16_000
    r = run_cli("prepare", "--lang", "en", "--source", str(folder), "--model", str(tiny_model),
                "--out", str(tmp_path / "store"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "store" / "train").is_dir() and (tmp_path / "store" / "validation").is_dir()


def _manifest(folder: Path, name: str) -> dict[str, dict[str, str]]:
    with open(folder / name, encoding="utf-8", newline="") as fh:
        return {row["audio"]: row for row in csv.DictReader(fh) if row["audio"]}


def _until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the manifest was not rewritten")
        time.sleep(0.2)


def test_review_corrects_and_drops_labels_in_the_browser(page: Any, labels: Path, tmp_path: Path) -> None:
    """The Review tab shows the least confident clip first; a correction typed in the page lands in
    manifest.csv (reviewed: corrected), and a dropped clip moves to rejected.csv (reason: dropped)."""
    rows = {**_manifest(labels, "rejected.csv"), **_manifest(labels, "manifest.csv")}
    order = sorted(rows, key=lambda a: float(rows[a]["confidence"] or 0))
    page.get_by_role("tab", name="Review").click()
    page.wait_for_function(
        "t => document.querySelector('#review-text textarea').value === t", arg=rows[order[0]]["text"]
    )
    assert "3 to review" in page.locator("#review-info").inner_text()
    page.fill("#review-text textarea", "Por favor ingrese la clave de entrada para la conferencia.")
    page.click("#review-accept")
    _until(lambda: _manifest(labels, "manifest.csv").get(order[0], {}).get("reviewed") == "corrected")
    fixed = _manifest(labels, "manifest.csv")[order[0]]
    assert fixed["text"] == "Por favor ingrese la clave de entrada para la conferencia."
    page.wait_for_function(
        "t => document.querySelector('#review-text textarea').value === t", arg=rows[order[1]]["text"]
    )
    page.click("#review-drop")
    _until(lambda: _manifest(labels, "rejected.csv").get(order[1], {}).get("reason") == "dropped")
    assert order[1] not in _manifest(labels, "manifest.csv")
    page.get_by_text("1 to review").first.wait_for()
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)


def test_the_app_serves_no_server_path(server: tuple[str, Path]) -> None:
    url, root = server
    (root / "secret.txt").write_text("not for the page")
    for path in ("/etc/passwd", str(root / "secret.txt"), str(root / "server.log")):
        assert _status(f"{url}gradio_api/file={path}") in (403, 404), path


def test_recordings_append_and_a_failed_write_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from whisperft.data import recorder
    from whisperft.errors import UsageError

    tone = (0.3 * np.sin(np.arange(16_000) * 0.05)).astype(np.float32)
    release = "client_id\tpath\tsentence\tup_votes\nc0ffee\tcv_1.mp3\tFrom Common Voice.\t2\n"
    (tmp_path / "train.tsv").write_text(release)
    recorder.add_recording(tmp_path, tone, '"Hi,"\tshe said,\nand left.', "train")
    recorder.add_recording(tmp_path, tone, "Second one.", "train")
    before = (tmp_path / "train.tsv").read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recorder.sf, "write", disk_full)
    with pytest.raises(OSError):
        recorder.add_recording(tmp_path, tone, "Third one.", "train")
    with pytest.raises(UsageError, match="transcript"):
        recorder.add_recording(tmp_path, tone, " \n ", "train")
    assert (tmp_path / "train.tsv").read_bytes() == before
    assert sorted(p.name.startswith("rec-") for p in (tmp_path / "clips").iterdir()) == [True, True]
    columns, rows = read_table(tmp_path / "train.tsv")
    assert columns == ["client_id", "path", "sentence", "up_votes"]  # a release's own columns are kept
    assert [r["sentence"] for _, r in rows] == ["From Common Voice.", '"Hi," she said, and left.', "Second one."]
    assert rows[0][1]["up_votes"] == "2" and rows[1][1]["client_id"] == ""
    assert recorder.dataset_counts(tmp_path)["train"].clips == 2  # the release's clip is not on disk here


def test_read_clip_refuses_long_silent_and_missing_audio(speech: dict[str, Path]) -> None:
    from whisperft.serve import read_clip

    with pytest.raises(gr.Error, match="too long: the limit is 1 s"):
        read_clip(str(speech["hello"]), max_seconds=1, max_mb=10)
    with pytest.raises(gr.Error, match="silent"):
        read_clip(str(speech["silent"]), max_seconds=60, max_mb=10)
    with pytest.raises(gr.Error, match="Record or upload"):
        read_clip(None, max_seconds=60, max_mb=10)
    assert read_clip(str(speech["hello"]), max_seconds=60, max_mb=10).dtype == np.float32
