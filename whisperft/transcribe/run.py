"""``whisperft transcribe``: pick the engine for a model folder, transcribe files, write subtitle files."""

from __future__ import annotations

from pathlib import Path

import torch

from whisperft.io import atomic_write_text
from whisperft.models.ct2_format import is_ct2_folder
from whisperft.models.registry import load_model, load_processor, resolve_model
from whisperft.models.whisper import check_language, require_language
from whisperft.transcribe.ct2_engine import CT2Transcriber
from whisperft.transcribe.engine import Transcriber
from whisperft.transcribe.subtitles import Transcript, render


def load_transcriber(
    model: str, language: str, compute_type: str = "default", trust_pickle: bool = False
) -> Transcriber:
    """A CTranslate2 folder takes the fast path; any other spec loads the PyTorch model (on CUDA if present)."""
    folder = Path(model).expanduser()
    if is_ct2_folder(folder):
        ct2 = CT2Transcriber(folder, compute_type=compute_type)
        require_language(ct2.multilingual, language)
        return ct2
    path = resolve_model(model)
    mdl = load_model(path, trust_pickle=trust_pickle)
    check_language(mdl, language)
    return Transcriber(mdl, load_processor(path), device="cuda" if torch.cuda.is_available() else None)


def write_transcripts(results: list[Transcript], fmt: str, output_dir: Path | None) -> list[tuple[str, Path]]:
    """Write ``<name>.<fmt>`` per transcript (beside the audio without ``output_dir``); same names get -2, -3..."""
    names: dict[str, int] = {}
    written = []
    for t in results:
        stem = Path(t.file).stem
        names[stem] = names.get(stem, 0) + 1
        if names[stem] > 1:
            stem = f"{stem}-{names[stem]}"
        target = (output_dir or Path(t.file).parent) / f"{stem}.{fmt}"
        atomic_write_text(target, render(t, fmt))
        written.append((t.file, target))
    return written
