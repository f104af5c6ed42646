"""Model specs, loading, and the generation config Whisper's ``generate`` needs.

Every model spec a user can type is resolved in ``resolve_model`` and nowhere else:
a size (``small``), a Hub id, a local HF folder, a training output folder, or a
bundled offline model (``bundled:base``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from whisperft.errors import UsageError, WhisperftError
from whisperft.languages import LANGUAGES, Language, get_language

logger = logging.getLogger("whisperft")

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
        from whisperft.bundled import BUNDLES

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
        from whisperft.bundled import ensure_bundled

        return str(ensure_bundled(spec.split(":", 1)[1]))
    path = Path(spec).expanduser()
    if spec in SIZES and not (path / "config.json").is_file():
        return SIZES[spec]
    if path.exists():
        return str(_model_folder(path))
    return spec  # a Hub id


def _model_folder(path: Path) -> Path:
    """A local HF model folder, or the model inside a training output folder."""
    from whisperft.ct2 import is_ct2_folder

    if is_ct2_folder(path):
        raise UsageError(
            f"{path} is a CTranslate2 model: transcribe takes it as is; for train or eval convert it "
            f"with whisperft import-ct2 {path} OUT"
        )
    if (path / "config.json").is_file():
        return path
    for sub in ("final", "best"):
        if (path / sub / "config.json").is_file():
            return path / sub
    if path.is_dir() and any(path.glob("checkpoints/step-*")):
        raise UsageError(f"{path} is a training run without a final model yet; resume it with whisperft train")
    raise UsageError(f"{path} is not a Whisper model folder (no config.json)")


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


def is_multilingual(model_config: Any) -> bool:
    """Whisper's rule: the multilingual vocabulary has 51865 tokens or more; *.en models have 51864."""
    return int(model_config.vocab_size) >= 51865


def check_language(model: WhisperForConditionalGeneration, language: str | None) -> Language | None:
    """Validate a requested language against the model; English-only models accept only English."""
    return require_language(is_multilingual(model.config), language)


def require_language(multilingual: bool, language: str | None) -> Language | None:
    """``check_language`` for a model known only by whether it is multilingual (a CTranslate2 model)."""
    if language in (None, "auto"):
        return None
    lang = get_language(language)
    if not multilingual and lang.code != "en":
        raise UsageError(
            f"this model is English-only (*.en) and cannot be trained or decoded for {lang.name}; "
            "use a multilingual model such as base or small"
        )
    return lang


def build_generation_config(
    tokenizer: WhisperTokenizerFast,
    model_config: Any,
    *,
    alignment_heads: list[list[int]] | None = None,
    suppress_tokens: list[int] | None = None,
    begin_suppress_tokens: list[int] | None = None,
) -> GenerationConfig:
    """A complete Whisper GenerationConfig from a tokenizer and model config."""

    def tid(token: str) -> int:
        value = tokenizer.convert_tokens_to_ids(token)
        if value is None or (value == tokenizer.unk_token_id and token != tokenizer.unk_token):
            raise WhisperftError(f"tokenizer has no {token} token")
        return int(value)

    multilingual = is_multilingual(model_config)
    eot = tid("<|endoftext|>")
    gc = GenerationConfig(
        decoder_start_token_id=tid("<|startoftranscript|>"),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=int(model_config.max_target_positions),
        no_timestamps_token_id=tid("<|notimestamps|>"),
        prev_sot_token_id=tid("<|startofprev|>"),
        is_multilingual=multilingual,
        suppress_tokens=list(suppress_tokens or []),
        begin_suppress_tokens=list(begin_suppress_tokens if begin_suppress_tokens is not None else [220, eot]),
        max_initial_timestamp_index=50,
        return_timestamps=False,
    )
    if alignment_heads:
        gc.alignment_heads = [list(map(int, h)) for h in alignment_heads]
    if multilingual:
        vocab = tokenizer.get_vocab()
        gc.lang_to_id = {lang.token: vocab[lang.token] for lang in LANGUAGES.values() if lang.token in vocab}
        gc.task_to_id = {"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")}
    return gc


def set_language(model: WhisperForConditionalGeneration, language: str | None, task: str = "transcribe") -> None:
    """Record the fine-tuned language and task in the model's generation config."""
    gc = model.generation_config
    model.config.forced_decoder_ids = None
    gc.forced_decoder_ids = None
    if is_multilingual(model.config) and language:
        gc.language = get_language(language).code
        gc.task = task


def decoder_prefix(tokenizer: WhisperTokenizerFast, model_config: Any, language: str, task: str) -> list[int]:
    """The tokens after <|startoftranscript|> that start every training label."""
    ids: list[int] = []
    if is_multilingual(model_config):
        ids.append(int(tokenizer.convert_tokens_to_ids(get_language(language).token)))
        ids.append(int(tokenizer.convert_tokens_to_ids(f"<|{task}|>")))
    ids.append(int(tokenizer.convert_tokens_to_ids("<|notimestamps|>")))
    return ids


def new_processor(tokenizer_file: str | Path, n_mels: int = 80) -> WhisperProcessor:
    """A processor from a bare ``tokenizer.json`` (as shipped with CTranslate2 models)."""
    tok = WhisperTokenizerFast(tokenizer_file=str(tokenizer_file))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    return WhisperProcessor(feature_extractor=fe, tokenizer=tok)


def context_frames(model_config: Any) -> int:
    """Mel frames the encoder takes: 3000 for Whisper's 30 s, fewer with a short audio context."""
    return int(model_config.max_source_positions) * 2


def apply_audio_context(model: WhisperForConditionalGeneration, seconds: float | None) -> None:
    """Shrink the encoder's window to ``seconds`` by slicing its position embeddings.

    The setting lives in the model's config (``max_source_positions``), so a saved
    model carries it and eval and transcribe use the same window.
    """
    if seconds is None:
        return
    positions = round(seconds * 50)  # 100 mel frames per second, halved by the encoder's stride-2 conv
    current = int(model.config.max_source_positions)
    if positions >= current:
        return
    enc = model.model.encoder
    weight = enc.embed_positions.weight.data[:positions].clone()
    enc.embed_positions = torch.nn.Embedding(positions, weight.shape[1])
    enc.embed_positions.weight.data.copy_(weight)
    enc.embed_positions.requires_grad_(False)
    enc.max_source_positions = positions
    enc.config.max_source_positions = positions
    model.config.max_source_positions = positions
    logger.info("audio context: %.1f s (%d encoder positions)", positions / 50, positions)
