"""``whisperft export``'s stage: one ``ExportRequest`` in, an ``ExportResult`` out.

The request is checked, and the target's extra found, before any model is resolved or speech is
synthesized for the parity check; the target's module is imported only then (torch, its client).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from whisperft.audio import decode_audio
from whisperft.errors import ConfigError
from whisperft.export.parity import parity_clips
from whisperft.export.request import ExportRequest
from whisperft.export.standard import ExportResult, generation_language
from whisperft.export.targets import check_request, target_entry
from whisperft.models.registry import resolve_model


def export(request: ExportRequest) -> ExportResult:
    """Export ``request.model`` for ``request.to``, parity-checked in the target's client on
    ``request.verify_audio`` (none given: sentences synthesized in the model's language) unless
    ``request.verify`` is False. The language is ``request.lang``, else the model's own, else English.
    Raises ConfigError listing every problem of the request, MissingExtra when the target's extra is
    missing, WhisperftError when the export or its parity check fails."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    quantization = check_request(request.to, request.quantization)  # before any download or speech synthesis
    path = resolve_model(request.model)
    language = request.lang or generation_language(path) or "en"
    clips = None
    if request.verify:
        clips = [decode_audio(p) for p in request.verify_audio] if request.verify_audio else parity_clips(language)
    return export_model(request.to, path, request.out, quantization, clips, language)


def export_model(
    target: str,
    model_path: str,
    out: Path,
    quantization: str | None,
    verify_audio: list[np.ndarray] | None,
    language: str | None,
) -> ExportResult:
    """Export ``model_path`` to ``out`` for ``target`` (a key of ``TARGETS``), parity-checked on ``verify_audio``
    unless it is None. ``quantization`` None: the target's default. Raises UsageError for an unknown target
    or quantization, MissingExtra when its extra is missing, WhisperftError when the export or its check fails."""
    module, function, default, _ = target_entry(target)
    run = getattr(importlib.import_module(f"whisperft.export.{module}"), function)  # deferred: torch, clients
    return run(model_path, out, quantization or default, verify_audio, language)  # each module checks the rest
