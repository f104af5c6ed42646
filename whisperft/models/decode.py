"""Decoding with a PyTorch Whisper: a batch of features -> token ids -> text; a store split -> texts.

Used by validation during training, by ``whisperft eval`` and by export's parity check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from whisperft.data.store import Split
from whisperft.features import FRAMES_PER_SECOND, N_FRAMES, pad_features
from whisperft.languages import get_language
from whisperft.models.whisper import is_multilingual

logger = logging.getLogger("whisperft")

PROMPT_TOKENS = 4  # <|startoftranscript|> <|lang|> <|task|> <|notimestamps|> take decoder positions too


@torch.inference_mode()
def generate_ids(
    model: Any,
    input_features: torch.Tensor,
    language: str | None,
    task: str = "transcribe",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
) -> torch.Tensor:
    """Greedy or beam decoding of (B, n_mels, frames) features into token ids."""
    kwargs: dict[str, Any] = {"num_beams": num_beams}
    if is_multilingual(model.config):
        kwargs["task"] = task
        if language not in (None, "auto"):
            kwargs["language"] = get_language(language).code
    limit = int(model.config.max_target_positions) - PROMPT_TOKENS
    kwargs["max_new_tokens"] = min(max_new_tokens or limit, limit)
    dtype = next(model.parameters()).dtype
    return model.generate(input_features.to(model.device, dtype), **kwargs)


@torch.inference_mode()
def generate_texts(
    model: Any,
    tokenizer: Any,
    input_features: torch.Tensor,
    language: str | None,
    task: str = "transcribe",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Greedy or beam decoding of one batch into text."""
    ids = generate_ids(model, input_features, language, task, num_beams, max_new_tokens)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def decode_split(
    model: Any,
    tokenizer: Any,
    split: Split,
    language: str,
    *,
    batch_size: int = 16,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    indices: Sequence[int] | None = None,
    n_frames: int = N_FRAMES,
    progress: Callable[[int], None] | None = None,
) -> dict[int, str]:
    """Decode store rows with a PyTorch model (in eval mode, restored after). Returns {index: text}."""
    was_training = model.training
    model.eval()
    try:
        return decode_rows(
            split,
            lambda feats: generate_texts(model, tokenizer, feats, language, num_beams=num_beams,
                                         max_new_tokens=max_new_tokens),
            batch_size=batch_size, indices=indices, n_frames=n_frames, progress=progress,
        )  # fmt: skip
    finally:
        model.train(was_training)


def decode_rows(
    split: Split,
    generate: Callable[[torch.Tensor], list[str]],
    *,
    batch_size: int = 16,
    indices: Sequence[int] | None = None,
    n_frames: int = N_FRAMES,
    progress: Callable[[int], None] | None = None,
) -> dict[int, str]:
    """Decode store rows in batches, longest first (less padding in the decoder), with any engine's
    ``generate`` (a batch of (B, n_mels, n_frames) features -> texts). Returns {index: text}."""
    todo = np.asarray(list(range(len(split))) if indices is None else list(indices), dtype=np.int64)
    order = todo[np.argsort(-split.n_frames[todo], kind="stable")] if len(todo) else todo
    cut = int((np.round(split.duration[todo] * FRAMES_PER_SECOND) > n_frames).sum()) if len(todo) else 0
    if cut:
        logger.warning(
            "%d of %d clips are longer than the model's %.0f s audio context: only their first %.0f s are heard",
            cut, len(todo), n_frames / FRAMES_PER_SECOND, n_frames / FRAMES_PER_SECOND,
        )  # fmt: skip
    hyps: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        idx = [int(i) for i in order[start : start + batch_size]]
        feats = pad_features([(split.frames(i), float(split.pad_value[i])) for i in idx], n_frames)
        hyps.update(zip(idx, generate(feats), strict=True))
        if progress:
            progress(len(idx))
    return hyps
