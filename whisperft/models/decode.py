"""Decoding with a PyTorch Whisper: a batch of features -> token ids -> text; a store split -> texts.

Used by validation during training, by ``whisperft eval`` and by export's parity check. Eval and
validation bound each utterance's decoding by its duration (``text.token_limit``) and stop a decode
that repeats itself (``text.runaway_stop``), and report which utterances were stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from whisperft.data.store import Split
from whisperft.features import FRAMES_PER_SECOND, N_FRAMES, pad_features
from whisperft.languages import prompt_language
from whisperft.models.whisper import is_multilingual
from whisperft.text import EVAL_BATCH_SIZE, REPEAT_MAX_NGRAM, Decoded, repeat_need, runaway_stop, token_limit

logger = logging.getLogger("whisperft")

PROMPT_TOKENS = 4  # <|startoftranscript|> <|lang|> <|task|> <|notimestamps|> take decoder positions too
# A batch of rows -> their decodings; ``limits``: most tokens per row; then whether to stop on repetition.
Generate = Callable[[torch.Tensor, list[int | None], bool], list[Decoded]]


class RepetitionStop:
    """A transformers stopping criterion: a row stops as soon as its tokens meet ``text.runaway_stop``'s
    repetition rule (their end has a period p <= 32 over max(4p, 32) tokens or more). For greedy decoding
    only (beam search reorders rows between steps). Call it once per generated token; a call on a shorter
    sequence (a new ``generate``, as in temperature fallback) starts over."""

    def __init__(self) -> None:
        self.runs: torch.Tensor | None = None  # (B, 32): positions in a row equal to the token p before
        self.length = 0

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
        """(B, length) token ids so far -> (B,) bool, True where the row is looping."""
        batch, n = input_ids.shape
        periods = torch.arange(1, REPEAT_MAX_NGRAM + 1, device=input_ids.device)
        if self.runs is None or self.runs.shape[0] != batch or n != self.length + 1:
            self.runs = torch.zeros(batch, REPEAT_MAX_NGRAM, dtype=torch.long, device=input_ids.device)
        self.length = n
        before = input_ids[:, (n - 1 - periods).clamp(min=0)]
        same = (before == input_ids[:, -1:]) & (periods < n)
        self.runs = (self.runs + 1) * same
        need = torch.tensor([repeat_need(int(p)) for p in periods], device=input_ids.device)
        return ((self.runs + periods) >= need).any(dim=1)


def decoder_limit(model: Any) -> int:
    """Most tokens the decoder can generate after its prompt: 448 positions - 4 = 444 for Whisper."""
    return int(model.config.max_target_positions) - PROMPT_TOKENS


@torch.inference_mode()
def generate_ids(
    model: Any,
    input_features: torch.Tensor,
    token: str | None,
    task: str = "transcribe",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    stop_repeats: bool = False,
    synced: bool = False,
) -> torch.Tensor:
    """Greedy or beam decoding of (B, n_mels, frames) features into (B, length) token ids, prompt included.
    ``token``: the code of the language token to prompt with, as decided for the model (``languages.Decoding``'s
    ``token``: a fine-tune's proxy, or a token training added); None for the generation config's language
    (a fine-tune's own), else detection. English-only models take none.
    ``stop_repeats``: end a greedy row at ``RepetitionStop`` (its ids then end without <|endoftext|>).
    ``synced``: every process keeps stepping until all are done (transformers' ``synced_gpus``), which a model
    sharded by FSDP or DeepSpeed ZeRO-3 needs: each forward pass gathers weights from all processes."""
    kwargs: dict[str, Any] = {"num_beams": num_beams}
    if synced:
        kwargs["synced_gpus"] = True
    if is_multilingual(model.config):
        kwargs["task"] = task
        if token is not None:
            kwargs["language"] = prompt_language(token)
    limit = decoder_limit(model)
    kwargs["max_new_tokens"] = min(max_new_tokens or limit, limit)
    if stop_repeats and num_beams == 1:
        from transformers import StoppingCriteriaList  # deferred: slow to import

        kwargs["stopping_criteria"] = StoppingCriteriaList([RepetitionStop()])
    dtype = next(model.parameters()).dtype
    return model.generate(input_features.to(model.device, dtype), **kwargs)


@torch.inference_mode()
def generate_decoded(
    model: Any,
    tokenizer: Any,
    input_features: torch.Tensor,
    token: str | None,
    limits: Sequence[int | None],
    *,
    task: str = "transcribe",
    num_beams: int = 1,
    stop_repeats: bool = True,
    synced: bool = False,
) -> list[Decoded]:
    """Decode one batch, each row bounded by its own limit (tokens after the prompt; None: the decoder's
    444) and, with ``stop_repeats``, by the repetition rule; each row's tokens are then cut exactly where
    ``text.runaway_stop`` says, so rows batched with longer ones come out as if decoded alone."""
    cap = decoder_limit(model)
    rows = [min(cap, x or cap) for x in limits]
    ids = generate_ids(model, input_features, token, task, num_beams, max(rows), stop_repeats, synced)
    eot = int(tokenizer.convert_tokens_to_ids("<|endoftext|>"))  # every Whisper special token is >= it
    out = []
    for seq, limit in zip(ids.tolist(), rows, strict=True):
        content = [t for t in seq if t < eot]
        kept, why = runaway_stop(content, limit, repeats=stop_repeats)
        out.append(Decoded(tokenizer.decode(content[:kept]).strip(), why))
    return out


@torch.inference_mode()
def generate_texts(
    model: Any,
    tokenizer: Any,
    input_features: torch.Tensor,
    token: str | None,
    task: str = "transcribe",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
) -> list[str]:
    """Greedy or beam decoding of one batch into text; ``token`` as in ``generate_ids``."""
    ids = generate_ids(model, input_features, token, task, num_beams, max_new_tokens)
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def decode_split(
    model: Any,
    tokenizer: Any,
    split: Split,
    token: str | None,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    indices: Sequence[int] | None = None,
    n_frames: int = N_FRAMES,
    progress: Callable[[int], None] | None = None,
    bound: bool = True,
    synced: bool = False,
) -> dict[int, Decoded]:
    """Decode store rows with a PyTorch model (in eval mode, restored after). Returns {index: Decoded}.
    ``synced``: see ``generate_ids``; every process must then decode as many rows as the others."""
    was_training = model.training
    model.eval()
    try:
        return decode_rows(
            split,
            lambda feats, limits, repeats: generate_decoded(
                model, tokenizer, feats, token, limits, num_beams=num_beams, stop_repeats=repeats, synced=synced
            ),
            batch_size=batch_size,
            indices=indices,
            n_frames=n_frames,
            progress=progress,
            max_new_tokens=max_new_tokens,
            bound=bound,
        )
    finally:
        model.train(was_training)


def row_limits(durations: Sequence[float], max_new_tokens: int | None, bound: bool) -> list[int | None]:
    """Per utterance, the most tokens to generate: ``text.token_limit`` of its duration (seconds) when
    ``bound``, and at most ``max_new_tokens``; None where neither applies (the decoder's own limit)."""
    caps = [token_limit(d) if bound else None for d in durations]
    if max_new_tokens is not None:
        caps = [max_new_tokens if c is None else min(c, max_new_tokens) for c in caps]
    return caps


def decode_rows(
    split: Split,
    generate: Generate,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    indices: Sequence[int] | None = None,
    n_frames: int = N_FRAMES,
    progress: Callable[[int], None] | None = None,
    max_new_tokens: int | None = None,
    bound: bool = True,
) -> dict[int, Decoded]:
    """Decode store rows in batches, longest first (less padding in the decoder), with any engine's
    ``generate`` (a batch of (B, n_mels, n_frames) features, per-row token limits (``row_limits``) and
    whether to stop on repetition -> one ``Decoded`` per row). ``bound=False`` is the unbounded decoding of
    before issue #18 (up to the decoder's limit, no repetition stop). Returns {index: Decoded}."""
    todo = np.asarray(list(range(len(split))) if indices is None else list(indices), dtype=np.int64)
    order = todo[np.argsort(-split.n_frames[todo], kind="stable")] if len(todo) else todo
    cut = int((np.round(split.duration[todo] * FRAMES_PER_SECOND) > n_frames).sum()) if len(todo) else 0
    if cut:
        logger.warning(
            "%d of %d clips are longer than the model's %.0f s audio context: only their first %.0f s are heard",
            cut,
            len(todo),
            n_frames / FRAMES_PER_SECOND,
            n_frames / FRAMES_PER_SECOND,
        )
    hyps: dict[int, Decoded] = {}
    for start in range(0, len(order), batch_size):
        idx = [int(i) for i in order[start : start + batch_size]]
        feats = pad_features([(split.frames(i), float(split.pad_value[i])) for i in idx], n_frames)
        limits = row_limits([float(split.duration[i]) for i in idx], max_new_tokens, bound)
        hyps.update(zip(idx, generate(feats, limits, bound), strict=True))
        if progress:
            progress(len(idx))
    return hyps
