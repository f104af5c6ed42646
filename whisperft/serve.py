"""``whisperft serve``: a web app to try a model, compare it with another, and record a dataset.

A surface like ``cli.py``: the page calls plain functions (``load_engine``, ``add_recording``) and
turns every failure into one line in the page, never a stack trace. The app binds to localhost
unless told otherwise, caps the upload size, and reads no server path that the user names: audio
arrives only as an upload or a microphone recording, and the dataset folder is fixed when it starts.

gradio is imported here and nowhere else; ``cli.py`` imports this module only for ``serve``.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home, before gradio is imported

import gradio as gr

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.recorder import SPLIT_FILES, add_recording, dataset_counts
from whisperft.errors import ConfigError, UsageError, WhisperftError
from whisperft.label.review import Item, decide, queue
from whisperft.label.run import CLIPS
from whisperft.languages import LANGUAGES, Decoding, get_language
from whisperft.models.registry import model_or_newest
from whisperft.serve_request import Limits, ServeRequest
from whisperft.transcribe.decoding import DecodeOptions, Engine
from whisperft.transcribe.load import decide_language, load_engine
from whisperft.transcribe.subtitles import Transcript, format_timestamp, render

logger = logging.getLogger("whisperft")

KEEP_DOWNLOADS = 100  # SRT files kept for the page's download links (gradio copies them to its cache)
SILENCE_PEAK = 1e-3  # below about -60 dBFS everywhere: nothing was recorded
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the app works offline


@dataclass
class Loaded:
    """A model ready to serve: the spec it was started with and its engine."""

    name: str
    engine: Engine


def page_error(message: str) -> Exception:
    """An error the page shows as one line; the server log stays free of its traceback."""
    return gr.Error(message, print_exception=False)


def read_clip(path: str | None, max_seconds: float, max_mb: int) -> np.ndarray:
    """16 kHz samples of an uploaded or recorded clip, or a ``page_error``."""
    if not path:
        raise page_error("Record or upload some audio first.")
    size = Path(path).stat().st_size
    if size > max_mb * 1_000_000:
        raise page_error(f"The file is {size / 1e6:.0f} MB; the limit is {max_mb} MB.")
    try:
        audio = decode_audio(path, max_duration=max_seconds)
    except AudioError as exc:
        if exc.reason == "too_long":
            raise page_error(f"The audio is too long: the limit is {max_seconds:g} s.") from None
        if exc.reason == "empty_audio":
            raise page_error("The recording is empty: record again.") from None
        raise page_error(f"This file is not audio that whisperft can decode ({Path(path).name}).") from None
    if float(np.abs(audio).max()) < SILENCE_PEAK:
        raise page_error("The recording is silent: check the microphone and record again.")
    return audio


def timestamped(t: Transcript) -> str:
    """One line per segment: ``[00:01.200 → 00:03.900] text``."""
    return "\n".join(
        f"[{format_timestamp(s.start, '.', False)} → {format_timestamp(s.end, '.', False)}] {s.text}"
        for s in t.segments
    )


def transcribe_clip(model: Loaded, audio: np.ndarray, decoding: Decoding, out_dir: Path) -> tuple[str, Path, str]:
    """(timestamped transcript, SRT file, timing line) for one model, decoding in ``decoding``'s language."""
    start = time.perf_counter()
    try:
        out = model.engine.transcribe([audio], DecodeOptions(decoding))[0]
    except WhisperftError as exc:
        raise page_error(str(exc)) from None
    except Exception as exc:  # a model failing must not crash the page
        line = f"{model.name} failed: {type(exc).__name__}: {exc}".splitlines()[0]
        logger.error(line)
        logger.debug("traceback", exc_info=True)
        raise page_error(line) from None
    seconds = time.perf_counter() - start
    t = Transcript("upload", out.language, round(len(audio) / SAMPLE_RATE, 3), out.text, out.segments)
    _prune(out_dir)
    srt = Path(tempfile.mkdtemp(dir=out_dir)) / "transcript.srt"
    srt.write_text(render(t, "srt"), encoding="utf-8")
    audio_s = len(audio) / SAMPLE_RATE
    shown = out.language or decoding.language or ("auto" if decoding.detect else "none")
    timing = f"{seconds:.2f} s for {audio_s:.1f} s of audio · language {shown}"
    return timestamped(t) or "(no speech)", srt, timing


def _prune(work: Path, keep: int = KEEP_DOWNLOADS) -> None:
    """Remove all but the newest ``keep`` SRT folders: a long-running server must not fill the disk."""
    folders = sorted((p for p in work.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[: max(0, len(folders) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def _counts_line(folder: Path) -> str:
    counts = dataset_counts(folder)
    if not counts:
        return f"`{folder}` is empty: record the first clip."
    parts = [f"{split} {c.clips} clip{'s' * (c.clips != 1)} ({c.seconds:.1f} s)" for split, c in counts.items()]
    return f"`{folder}`: " + ", ".join(parts)


def page_languages(models: list[Loaded], lang: str | None) -> tuple[list[str], str]:
    """The language menu (auto, the models' own languages, Whisper's) and its first value: ``lang``,
    else the first model's own language (a fine-tune's), else auto."""
    owns = [m.engine.own.language.code for m in models if m.engine.own is not None]
    own = models[0].engine.own if models else None
    first = get_language(lang).code if lang not in (None, "auto") else own.language.code if own else "auto"
    return list(dict.fromkeys(["auto", first, *owns, *sorted(LANGUAGES)])), first


def language_for(model: Loaded, code: str) -> str | None:
    """``code`` when ``model`` can decode it; else None, its own language (or detection): a stock model
    compared with a fine-tune for a language Whisper lacks has no token for that language."""
    try:
        model.engine.decoding(code)
    except UsageError:
        return None
    return code


def build_app(
    models: list[Loaded],
    dataset_dir: Path,
    lang: str | None = None,
    limits: Limits | None = None,
    review: Path | None = None,
) -> Any:
    """The Gradio Blocks: a Transcribe tab (side by side with ``--compare``) and a Record tab.

    ``lang``: the language the page starts with; None for the first model's own (auto when it has none)."""
    limits = limits or Limits()
    work = Path(tempfile.mkdtemp(prefix="whisperft-serve-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    with gr.Blocks(title="whisperft") as app:
        names = " vs ".join(f"`{m.name}`" for m in models)
        gr.Markdown(f"# whisperft\n{names}")
        with gr.Tab("Transcribe"):
            _transcribe_tab(models, lang, limits, work)
        with gr.Tab("Record a dataset"):
            _record_tab(dataset_dir, page_languages(models, lang)[1], limits)
        if review is not None:
            with gr.Tab("Review", elem_id="review-tab") as tab:
                show, outputs, skipped = _review_tab(review)
            tab.select(show, [skipped], outputs)  # the folder is read when the tab opens: the queue is current
    return app


def _review_line(item: Item, left: int) -> str:
    row = item.row
    where = "kept" if item.kept else f"rejected: {row.get('reason')} ({row.get('detail')})"
    confidence = f"{float(row['confidence']):.2f}" if row.get("confidence") else "not reported"
    source = Path(row.get("source", "")).name
    return (
        f"**{left} to review** · confidence {confidence} · {where} · `{source}` {row.get('start')}-{row.get('end')} s"
    )


def _review_tab(folder: Path) -> tuple[Any, list[Any], Any]:
    """The clips of a ``whisperft label`` folder, least confident first: accept, correct or drop each one.
    Returns the function that shows the next clip, its outputs and the skipped-clips state."""
    gr.Markdown(
        f"The clips of `{folder}`, least confident first. Accept a label as it is, correct it and accept, or "
        "drop the clip; manifest.csv and rejected.csv are rewritten after each decision."
    )
    audio = gr.Audio(type="filepath", interactive=False, label="Clip", elem_id="review-audio")
    text = gr.Textbox(label="Label: what is said in the clip", elem_id="review-text")
    info = gr.Markdown(elem_id="review-info")
    with gr.Row():
        accept = gr.Button("Accept", variant="primary", elem_id="review-accept")
        drop = gr.Button("Drop", variant="stop", elem_id="review-drop")
        skip = gr.Button("Skip", elem_id="review-skip")
    current, skipped = gr.State(None), gr.State([])
    outputs = [audio, text, info, current]

    def show(passed: list[str]) -> list[Any]:
        items = [i for i in queue(folder) if i.row["audio"] not in passed]
        if not items:
            return [None, "", "Every clip is reviewed.", None]
        first = items[0]
        return [
            str(folder / first.row["audio"]),
            first.row["text"],
            _review_line(first, len(items)),
            first.row["audio"],
        ]

    def act(clip: str | None, label: str | None, passed: list[str]) -> list[Any]:
        if clip is None:
            raise page_error("No clip to review.")
        try:
            decide(folder, clip, label)
        except WhisperftError as exc:
            raise page_error(str(exc)) from None
        return show(passed)

    accept.click(lambda clip, label, passed: act(clip, label, passed), [current, text, skipped], outputs)
    drop.click(lambda clip, passed: act(clip, None, passed), [current, skipped], outputs)
    skip.click(lambda clip, passed: [*show([*passed, clip]), [*passed, clip]], [current, skipped], [*outputs, skipped])
    return show, outputs, skipped


def _transcribe_tab(models: list[Loaded], lang: str | None, limits: Limits, work: Path) -> None:
    audio = gr.Audio(
        sources=["microphone", "upload"], type="filepath", label="Speak, or upload a file", elem_id="audio"
    )
    choices, first = page_languages(models, lang)
    language = gr.Dropdown(choices, value=first, label="Language")
    button = gr.Button("Transcribe", variant="primary", elem_id="transcribe")
    outputs: list[Any] = []
    with gr.Row():
        for i, m in enumerate(models):
            with gr.Column():
                gr.Markdown(f"### {m.name}")
                outputs.append(gr.Textbox(label="Transcript", lines=6, elem_id=f"transcript-{i}"))
                outputs.append(gr.Markdown(elem_id=f"timing-{i}"))
                outputs.append(gr.File(label="Subtitles (SRT)", elem_id=f"srt-{i}"))

    def run(path: str | None, code: str) -> list[Any]:
        clip = read_clip(path, limits.max_seconds, limits.max_upload_mb)
        values: list[Any] = []
        for m in models:
            text, srt, timing = transcribe_clip(m, clip, m.engine.decoding(language_for(m, code)), work)
            values += [text, timing, str(srt)]
        return values

    button.click(run, [audio, language], outputs)


def _record_tab(folder: Path, lang: str | None, limits: Limits) -> None:
    code = lang if lang not in (None, "auto") else "LANG"
    gr.Markdown(
        "Each clip and its typed transcript is added to a Common Voice style folder. "
        f"Prepare it with `whisperft prepare --lang {code} --source {folder}`."
    )
    audio = gr.Audio(
        sources=["microphone", "upload"], type="filepath", label="Speak one sentence (at most 30 s)", elem_id="clip"
    )
    sentence = gr.Textbox(label="What is said in the clip", elem_id="sentence")
    split = gr.Radio(list(SPLIT_FILES), value="train", label="Split")
    button = gr.Button("Add to dataset", variant="primary", elem_id="add")
    status = gr.Markdown(_counts_line(folder), elem_id="dataset-status")

    def add(path: str | None, text: str, which: str) -> tuple[None, str, str]:
        clip = read_clip(path, limits.max_clip_seconds, limits.max_upload_mb)
        try:
            saved = add_recording(folder, clip, text, which)
        except WhisperftError as exc:
            raise page_error(str(exc)) from None
        seconds = len(clip) / SAMPLE_RATE
        return None, "", f"Saved `{saved.name}` ({seconds:.1f} s) to {which}. {_counts_line(folder)}"

    button.click(add, [audio, sentence, split], [audio, sentence, status])


def serve(
    models: list[Loaded],
    dataset_dir: Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    lang: str | None = None,
    limits: Limits | None = None,
    review: Path | None = None,
) -> None:
    """Start the app, print its address, and block until Ctrl-C. ``review``: a ``whisperft label`` folder for
    the Review tab (its clips are the only files of it the page may serve)."""
    limits = limits or Limits()
    app = build_app(models, dataset_dir, lang, limits, review)
    app.queue(default_concurrency_limit=1)  # one model call at a time: the models are shared
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        max_file_size=f"{limits.max_upload_mb}mb",
        theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"]),
        ssr_mode=False,
        share=False,
        show_error=False,
        quiet=True,
        footer_links=["settings"],
        prevent_thread_lock=True,
        allowed_paths=[str(review / CLIPS)] if review is not None else None,
    )
    print(f"whisperft serve: {url} (Ctrl-C to stop)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close()


def run_serve(request: ServeRequest) -> None:
    """Load the request's models, each checked for the starting language as it loads (a language a model
    cannot decode is refused before the page opens), and serve until Ctrl-C. Raises ConfigError for a bad
    request; logs a warning when the app listens beyond this machine."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    loaded = []
    for spec in [model_or_newest(request.model), *([request.compare] if request.compare else [])]:
        engine = load_engine(spec, request.compute_type, request.trust_pickle, quiet=request.quiet)
        decide_language(engine, request.lang)
        loaded.append(Loaded(spec, engine))
    if request.public:
        logger.warning("serving on %s: anyone who can reach this machine can use the app", request.host)
    if request.review is not None:
        queue(request.review)  # a folder label did not write is refused before the page opens
    serve(loaded, request.dataset_dir, request.host, request.port, request.lang, request.limits, request.review)
