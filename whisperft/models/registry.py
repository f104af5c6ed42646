"""Model specs and loading: every spec a user can type is resolved here and nowhere else.

A spec is a size (``small``), a Hub id, a local HF folder, a training output folder, or a
bundled offline model (``bundled:base``). ``latest_run`` finds the newest finished run. A Hub id is
checked against the network first (``whisperft.hub``): without one, a cached copy is used, or the
command fails in seconds with one line. A released size's architecture needs no download at all
(``released_config``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor

from whisperft.errors import UsageError, WhisperftError
from whisperft.hub import hub_or_cache
from whisperft.io import COMPLETE_MARKER, is_complete, is_ct2_folder
from whisperft.models.bundled import BUNDLES, ensure_bundled
from whisperft.models.sizes import RELEASED

logger = logging.getLogger("whisperft")

RUNS_DIR = Path("runs")  # where train's configs/ put their output_dir, relative to the working directory
RUN_MODELS = ("*/final", "*/*/final", "*/model")  # a run's final model; the demo copies its final/ to model/

SIZES = {
    "tiny": "openai/whisper-tiny",
    "tiny.en": "openai/whisper-tiny.en",
    "base": "openai/whisper-base",
    "base.en": "openai/whisper-base.en",
    "small": "openai/whisper-small",
    "small.en": "openai/whisper-small.en",
    "medium": "openai/whisper-medium",
    "medium.en": "openai/whisper-medium.en",
    "large": "openai/whisper-large-v3",
    "large-v1": "openai/whisper-large",
    "large-v2": "openai/whisper-large-v2",
    "large-v3": "openai/whisper-large-v3",
    "turbo": "openai/whisper-large-v3-turbo",
    "large-v3-turbo": "openai/whisper-large-v3-turbo",
}


def model_spec_problem(spec: str) -> str | None:
    """Why a model spec cannot work, checked without the network; None when it may."""
    spec = spec.strip()
    if not spec:
        return "empty model spec"
    if spec.startswith("bundled:"):
        name = spec.split(":", 1)[1]
        if name not in BUNDLES:
            return f"unknown bundled model {spec!r}; available: {', '.join(f'bundled:{n}' for n in BUNDLES)}"
        return None
    path = Path(spec).expanduser()
    if spec in SIZES or path.exists():
        return None
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1 or spec.endswith("/"):
        return (
            f"model {spec!r} not found: not a size ({', '.join(sorted(SIZES))}), not an existing folder, "
            "not bundled:base/bundled:tiny.en, and not a Hub id (org/name)"
        )
    return None


def resolve_model(spec: str) -> str:
    """Turn a model spec into something ``from_pretrained`` accepts: a local folder or a Hub id."""
    problem = model_spec_problem(spec)
    if problem:
        raise UsageError(problem)
    spec = spec.strip()
    if spec.startswith("bundled:"):
        return str(ensure_bundled(spec.split(":", 1)[1]))
    path = Path(spec).expanduser()
    if spec in SIZES and not (path / "config.json").is_file():
        repo = SIZES[spec]
    elif path.exists():
        return str(_model_folder(path))
    else:
        repo = spec  # a Hub id
    hub_or_cache(repo, f"model {spec!r}")
    return repo


def released_config(spec: str) -> WhisperConfig | None:
    """The architecture of a released Whisper named by size (``small``) or Hub id (``openai/whisper-small``),
    from the published table (``models/sizes.RELEASED``), with no download; None for any other spec,
    and for a local folder of that name."""
    spec = spec.strip()
    path = Path(spec).expanduser()
    if (path / "config.json").is_file() if spec in SIZES else path.exists():  # as resolve_model decides
        return None
    dims = RELEASED.get(SIZES.get(spec, spec))
    return None if dims is None else dims.whisper_config()


def _model_folder(path: Path) -> Path:
    """A local HF model folder, or the model inside a training output folder."""
    if is_ct2_folder(path):
        raise UsageError(
            f"{path} is a CTranslate2 model: transcribe and eval take it as is; to train it, convert it "
            f"with whisperft import-ct2 {path} OUT"
        )
    if (path / "config.json").is_file():
        return path
    for sub in ("final", "best"):
        if (path / sub / "config.json").is_file():
            return path / sub
    run = _run_of_checkpoint(path)
    if run is not None:
        models = [str(run / sub) for sub in ("final", "best") if (run / sub / "config.json").is_file()]
        use = f"use {' or '.join(models)}" if models else "its run has no final/ or best/ yet; resume it with train"
        raise UsageError(f"{path} is a training checkpoint (weights and optimizer state), not a model: {use}")
    if path.is_dir() and any(path.glob("checkpoints/step-*")):
        raise UsageError(f"{path} is a training run without a final model yet; resume it with whisperft train")
    raise UsageError(f"{path} is not a Whisper model folder (no config.json)")


def _run_of_checkpoint(path: Path) -> Path | None:
    """The run folder of a checkpoint (``RUN/checkpoints/step-N``) or of its ``RUN/checkpoints``; else None."""
    path = path if path.name not in ("", ".", "..") else path.resolve()
    if path.name == "checkpoints" and any(path.glob("step-*")):
        return path.parent
    if path.parent.name == "checkpoints" and re.fullmatch(r"step-\d+", path.name):
        return path.parent.parent
    return None


def load_processor(model_path: str) -> WhisperProcessor:
    """Load the feature extractor and tokenizer that belong to a model."""
    try:
        processor = WhisperProcessor.from_pretrained(model_path)
    except (OSError, ValueError) as exc:
        raise WhisperftError(f"cannot load the processor of {model_path}: {_short(exc)}") from None
    tok = processor.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return processor


def load_model(
    model_path: str,
    attn_implementation: str = "sdpa",
    trust_pickle: bool = False,
    dtype: torch.dtype | None = None,
) -> WhisperForConditionalGeneration:
    """Load Whisper weights. Only safetensors, unless ``trust_pickle`` allows a pickle checkpoint."""
    local = Path(model_path)
    pickles_only = not list(local.glob("*.safetensors")) and (list(local.glob("*.bin")) or list(local.glob("*.pt")))
    if local.is_dir() and not trust_pickle and pickles_only:
        raise UsageError(
            f"{local} holds only pickle weights (*.bin), which can run code when loaded; "
            "convert them to safetensors or pass --trust-pickle if you trust the source"
        )
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            model_path,
            attn_implementation=attn_implementation,
            use_safetensors=None if trust_pickle else True,
            dtype=dtype,
        )
    except (OSError, ValueError) as exc:
        raise WhisperftError(f"cannot load model {model_path}: {_short(exc)}") from None
    return model


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def latest_run(root: Path = RUNS_DIR) -> Path | None:
    """The newest finished model under ``root`` (by its completion marker), or None."""
    found = []
    for pattern in RUN_MODELS:
        for folder in root.glob(pattern):
            if is_complete(folder) and (folder / "config.json").is_file():
                found.append(((folder / COMPLETE_MARKER).stat().st_mtime, str(folder)))
    return Path(max(found)[1]) if found else None


def default_model(root: Path = RUNS_DIR) -> str:
    """The model to use when none is given: the newest finished run, or a one-line error saying what to pass."""
    found = latest_run(root)
    if found is None:
        raise UsageError(
            f"no --model given and no finished run under ./{root}: pass --model bundled:base (offline weights), "
            "a size such as small, or a run folder such as runs/small-1000"
        )
    return str(found)


def model_or_newest(spec: str | None) -> str:
    """``spec``, or when it is None the newest finished run (``default_model``), said in the log."""
    if spec:
        return spec
    found = default_model()
    logger.info("model: %s (the newest finished run; pass --model to choose)", found)
    return found
