"""Each stage's request holds the only copy of its defaults: the CLI's options show the same values, and
every usage error of a request is listed at once, before any model loads."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.helpers import invoke
from whisperft.cli import app
from whisperft.config import LORA_TARGETS, config_from_dict
from whisperft.data.align import AlignOptions
from whisperft.data.store import AUDIO_FORMATS as STORE_AUDIO_FORMATS
from whisperft.evaluate.request import EvalRequest
from whisperft.export.request import ExportRequest
from whisperft.label.request import LabelRequest
from whisperft.languages import DETECT
from whisperft.prepare.request import AUDIO_FORMATS, PrepareRequest
from whisperft.serve_request import ServeRequest
from whisperft.text import EVAL_BATCH_SIZE, MAX_CLIP_SECONDS
from whisperft.train.request import PlanRequest, SweepRequest
from whisperft.transcribe.decoding import DecodeOptions
from whisperft.transcribe.request import TranscribeRequest


def _defaults(stage: Any) -> dict[str, Any]:
    """A request's field defaults, or a stage function's keyword defaults."""
    if dataclasses.is_dataclass(stage):
        return {f.name: f.default for f in dataclasses.fields(stage) if f.default is not dataclasses.MISSING}
    return {n: p.default for n, p in inspect.signature(stage).parameters.items() if p.default is not p.empty}


@pytest.mark.parametrize(
    ("command", "stage", "least"),
    [
        ("transcribe", TranscribeRequest, 8),
        ("eval", EvalRequest, 8),
        ("prepare", PrepareRequest, 8),
        ("export", ExportRequest, 4),
        ("plan", PlanRequest, 2),
        ("sweep", SweepRequest, 6),
        ("serve", ServeRequest, 8),
        ("label", LabelRequest, 9),
    ],
)
def test_the_cli_shows_the_stage_defaults(command: str, stage: Any, least: int) -> None:
    options = {p.name: p.default for p in typer.main.get_command(app).commands[command].params}  # type: ignore[attr-defined]
    # an unset list option (None) is the request's empty tuple
    shared = {name: default for name, default in _defaults(stage).items() if name in options and default != ()}
    assert len(shared) >= least, shared
    assert {name: options[name] for name in shared} == shared


def test_shared_limits_have_one_value() -> None:
    """The longest clip, the eval batch and LoRA's layers, wherever a stage or the schema needs them."""
    cfg = config_from_dict({"language": "sv"})
    longest = (cfg.data.max_duration, AlignOptions().max_duration, PrepareRequest.max_duration)
    assert longest == (MAX_CLIP_SECONDS,) * 3
    assert cfg.eval.batch_size == EvalRequest.batch_size == EVAL_BATCH_SIZE
    assert tuple(cfg.train.lora.target_modules) == LORA_TARGETS
    assert DecodeOptions(DETECT).batch_size == TranscribeRequest.batch_size
    assert AlignOptions().max_cer == PrepareRequest.max_cer
    assert set(AUDIO_FORMATS) == set(STORE_AUDIO_FORMATS)  # prepare --audio offers what the store can write


def test_every_problem_of_a_request_at_once(tmp_path: Path) -> None:
    """A bad format, task and language on one command line: one exit 2 that names all three, before any
    model is looked for (the model given does not exist)."""
    bad = ("--format", "doc", "--task", "sing", "--lang", "xx-not-a-language")
    r = invoke("transcribe", str(tmp_path), "--model", str(tmp_path / "none"), *bad)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert "3 problems" in text and "--format must be one of txt, srt, vtt, json" in text
    assert "--task must be transcribe or translate, got 'sing'" in text and "xx-not-a-language" in text
    assert TranscribeRequest(("a.wav",), "m").problems() == []
    assert EvalRequest("m", "d", batch_size=0, report=True, out=None).problems() == [
        "--batch-size takes a number of 1 or more, got 0",
        "--report writes report.html beside metrics.json: give --out",
    ]


def test_the_language_is_decided_once(
    tiny_model: Path, wavs: list[tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``whisperft transcribe --lang sv`` on two files: the language is decided once, when the model is
    loaded, and that decision reaches the decoder (issue #34: it was resolved at every hop)."""
    from whisperft import languages
    from whisperft.transcribe import engine

    calls: list[str | None] = []
    real = languages.decode_language

    def counted(requested: str | None, *args: Any, **kwargs: Any) -> languages.Decoding:
        calls.append(requested)
        return real(requested, *args, **kwargs)

    monkeypatch.setattr(languages, "decode_language", counted)
    monkeypatch.setattr(engine, "decode_language", counted)
    r = invoke("transcribe", str(wavs[0][0]), str(wavs[1][0]), "--model", str(tiny_model), "--lang", "sv")
    assert r.exit_code == 0, r.output
    assert calls == ["sv"]
