"""What every Whisper checkpoint needs around its weights: language rules, prompts, generation config.

Pure functions over a transformers Whisper model, its config and its tokenizer. Nothing here
resolves a model spec or reads a model folder; ``registry`` does that.
"""

from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken
from transformers import (
    GenerationConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from whisperft.errors import WhisperftError
from whisperft.features import FRAMES_PER_SECOND
from whisperft.languages import (
    LANGUAGES,
    MODEL_KEY,
    Language,
    ModelLanguage,
    get_language,
    prompt_language,
    require_language,
)

logger = logging.getLogger("whisperft")

MULTILINGUAL_VOCAB = 51865  # multilingual Whisper vocabularies have 51865 tokens or more; *.en have 51864
POSITIONS_PER_SECOND = 50  # 100 mel frames per second, halved by the encoder's stride-2 conv
FULL_WINDOW_POSITIONS = 30 * POSITIONS_PER_SECOND  # 1500: Whisper's 30 s window
MAX_TIMESCALE = 10_000  # of Whisper's sinusoidal encoder positions


def is_multilingual(model_config: Any) -> bool:
    """Whisper's rule: the multilingual vocabulary has 51865 tokens or more; *.en models have 51864."""
    return int(model_config.vocab_size) >= MULTILINGUAL_VOCAB


def check_language(model: WhisperForConditionalGeneration, language: str | None) -> Language | None:
    """Validate a requested language against the model; English-only models accept only English."""
    return require_language(is_multilingual(model.config), language)


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
    )  # no return_timestamps: a stored False makes transformers refuse long-form audio
    if alignment_heads:
        gc.alignment_heads = [list(map(int, h)) for h in alignment_heads]
    if multilingual:
        vocab = tokenizer.get_vocab()
        gc.lang_to_id = {lang.token: vocab[lang.token] for lang in LANGUAGES.values() if lang.token in vocab}
        gc.task_to_id = {"transcribe": tid("<|transcribe|>"), "translate": tid("<|translate|>")}
    return gc


def set_language(
    model: WhisperForConditionalGeneration,
    language: str | None,
    task: str = "transcribe",
    own: ModelLanguage | None = None,
) -> None:
    """Record the fine-tuned language, the token it prompts with (``own``; default: the language's own
    token) and the task.

    ``generation_config.language`` gets what transformers' ``generate`` takes for the token, so a
    ``pipeline`` decodes the folder with no language argument; config.json keeps the language itself
    under ``MODEL_KEY`` (a proxy token is not the model's language).
    """
    gc = model.generation_config
    if getattr(gc, "return_timestamps", None) is False:  # saved by earlier conversions; blocks long-form
        gc.return_timestamps = None
    model.config.forced_decoder_ids = None
    gc.forced_decoder_ids = None
    if is_multilingual(model.config) and language:
        lang = get_language(language)
        own = own or ModelLanguage(lang, lang.code)
        gc.language = prompt_language(own.token)
        gc.task = task
        setattr(model.config, MODEL_KEY, own.to_dict())


def own_language(model: Any) -> ModelLanguage | None:
    """The language a loaded model was fine-tuned for (``set_language``), or None."""
    config = getattr(model, "config", None)
    entry = getattr(config, MODEL_KEY, None)
    return ModelLanguage.read({MODEL_KEY: entry} if entry else None, getattr(model.generation_config, "language", None))


def add_language_token(
    model: WhisperForConditionalGeneration, tokenizer: WhisperTokenizerFast, language: Language, init_from: str
) -> int:
    """Add ``<|code|>`` for a language Whisper lacks, its embedding row a copy of ``init_from``'s token.

    The token goes after Whisper's last (id 51865 in a 51865-token vocabulary); the output projection
    shares the embedding, so the copy also starts its logit where the related language's is. It joins
    ``generation_config.lang_to_id``, so transformers prompts with it and language detection can name it.
    Returns the new token's id. Idempotent: a tokenizer that has the token keeps it.
    """
    vocab = tokenizer.get_vocab()
    if language.token not in vocab:
        tokenizer.add_tokens([AddedToken(language.token, special=True, normalized=False)], special_tokens=True)
    new_id = int(tokenizer.convert_tokens_to_ids(language.token))
    source = int(tokenizer.convert_tokens_to_ids(get_language(init_from).token))
    if model.get_input_embeddings().weight.shape[0] <= new_id:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight[new_id] = model.get_input_embeddings().weight[source]
    gc = model.generation_config
    gc.lang_to_id = {**(getattr(gc, "lang_to_id", None) or {}), language.token: new_id}
    return new_id


@torch.inference_mode()
def detect_languages(
    model: WhisperForConditionalGeneration, tokenizer: Any, features: torch.Tensor, whisper_only: bool = False
) -> list[str]:
    """Whisper's language detection on (B, n_mels, frames) features: one language token code per row.

    ``whisper_only``: choose among Whisper's own language tokens, never one a fine-tune added.
    """
    gc = model.generation_config
    if whisper_only:
        gc = copy.deepcopy(gc)
        gc.lang_to_id = {t: i for t, i in (gc.lang_to_id or {}).items() if t.strip("<|>") in LANGUAGES}
    dtype = next(model.parameters()).dtype
    ids = model.detect_language(features.to(model.device, dtype), generation_config=gc)
    return [t.strip("<|>") for t in tokenizer.convert_ids_to_tokens(ids.view(-1).tolist())]


def fold_added_token(model: WhisperForConditionalGeneration, tokenizer_json: dict[str, Any]) -> ModelLanguage | None:
    """For clients that know only Whisper's language tokens (faster-whisper, whisper.cpp): move an added
    language token's trained row into its ``fallback`` language's slot and drop the added token.

    The decoder then prompts with the fallback token and sees exactly the trained embedding; its text
    tokens and their logits are unchanged, so it transcribes as before. ``tokenizer_json`` (a parsed
    tokenizer.json) loses the added token in place. Returns the folded ``ModelLanguage``, or None when
    the model has no added token.
    """
    own = own_language(model)
    if own is None or not own.added_token:
        return None
    if not own.fallback:
        raise WhisperftError(f"{own.language.token} was added without a related language to fall back on")
    added = [t for t in tokenizer_json.get("added_tokens", []) if t["content"] == own.language.token]
    if not added:
        raise WhisperftError(f"the tokenizer has no {own.language.token} token")
    new_id = int(added[0]["id"])
    fallback = get_language(own.fallback).token
    target = next((t["id"] for t in tokenizer_json["added_tokens"] if t["content"] == fallback), None)
    if target is None or not get_language(own.fallback).whisper:
        raise WhisperftError(f"{own.language.token} falls back on {fallback}, which is not a Whisper language token")
    weight = model.get_input_embeddings().weight
    if new_id != weight.shape[0] - 1:
        raise WhisperftError(f"{own.language.token} is not the last token of the vocabulary; cannot fold it")
    with torch.no_grad():
        weight[int(target)] = weight[new_id]
    model.resize_token_embeddings(new_id, mean_resizing=False)
    tokenizer_json["added_tokens"] = [t for t in tokenizer_json["added_tokens"] if t["id"] != new_id]
    folded = ModelLanguage(own.language, own.fallback)
    gc = model.generation_config
    gc.lang_to_id = {k: v for k, v in (gc.lang_to_id or {}).items() if v != new_id}
    set_language(model, own.language.code, getattr(gc, "task", None) or "transcribe", folded)
    return folded


def decoder_prefix(tokenizer: WhisperTokenizerFast, model_config: Any, token: str, task: str) -> list[int]:
    """The tokens after <|startoftranscript|> that start every training label.

    ``token``: the code of the language token to prompt with (a proxy's, or one ``add_language_token`` added).
    """
    ids: list[int] = []
    if is_multilingual(model_config):
        lang_id = tokenizer.convert_tokens_to_ids(f"<|{token}|>")
        if lang_id is None or lang_id == tokenizer.unk_token_id:
            raise WhisperftError(f"the tokenizer has no <|{token}|> token")
        ids.append(int(lang_id))
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


def feature_extractor_for(model_config: Any) -> WhisperFeatureExtractor:
    """A feature extractor whose window (``chunk_length``) is the encoder's, so clients pad to what it takes."""
    seconds = context_frames(model_config) // FRAMES_PER_SECOND
    return WhisperFeatureExtractor(feature_size=int(model_config.num_mel_bins), chunk_length=seconds)


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
    positions = round(seconds * POSITIONS_PER_SECOND)
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


def sinusoid_positions(length: int, channels: int, half: bool) -> torch.Tensor:
    """Whisper's encoder position table, (length, channels): sin | cos of position x geometric frequencies.

    Computed in float64; ``half`` rounds it through float16, as OpenAI's checkpoints store it.
    """
    increment = math.log(MAX_TIMESCALE) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float64))
    scaled = torch.arange(length, dtype=torch.float64)[:, None] * inv[None, :]
    table = torch.cat([scaled.sin(), scaled.cos()], dim=1)
    return (table.half() if half else table).float()


def restore_full_window(model: WhisperForConditionalGeneration) -> bool:
    """Undo ``apply_audio_context``: give the encoder its 30 s position table back. Returns whether it changed.

    The table is fixed sinusoids, never trained, so rows beyond the short window are rebuilt exactly
    (rounded through float16 when the model's own rows are, as in OpenAI's weights).
    """
    enc = model.model.encoder
    have, width = enc.embed_positions.weight.shape
    if have >= FULL_WINDOW_POSITIONS:
        return False
    own = enc.embed_positions.weight.data.float()
    table = sinusoid_positions(FULL_WINDOW_POSITIONS, width, half=torch.equal(own, own.half().float()))
    table[:have] = own
    enc.embed_positions = torch.nn.Embedding(FULL_WINDOW_POSITIONS, width)
    enc.embed_positions.weight.data.copy_(table)
    enc.embed_positions.requires_grad_(False)
    enc.max_source_positions = FULL_WINDOW_POSITIONS
    enc.config.max_source_positions = FULL_WINDOW_POSITIONS
    model.config.max_source_positions = FULL_WINDOW_POSITIONS
    return True
