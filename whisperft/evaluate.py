"""Metrics and batched evaluation: orthographic and normalized WER/CER, per utterance.

The normalizer lowercases and drops punctuation and symbols but keeps combining
marks (Unicode category M), unlike Whisper's BasicTextNormalizer, which strips them
and so destroys words in Devanagari, Tamil, Thai and other scripts.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rapidfuzz.distance import Levenshtein

from whisperft.features import pad_features
from whisperft.languages import get_language

logger = logging.getLogger("whisperft")


def normalize_text(text: str) -> str:
    """Casefold, replace punctuation and symbols with spaces, keep letters, digits and combining marks."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] in "PSZC":
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def _units(text: str, unit: str) -> list[str]:
    if unit == "word":
        return text.split()
    return list(text.replace(" ", "")) if unit == "char_nospace" else list(" ".join(text.split()))


def edit_errors(ref: str, hyp: str, unit: str = "word") -> tuple[int, int]:
    """(edit distance, reference length) in words or characters."""
    r, h = _units(ref, unit), _units(hyp, unit)
    return Levenshtein.distance(r, h), len(r)


@dataclass
class Utterance:
    id: str
    reference: str
    hypothesis: str
    word_errors: int
    words: int
    char_errors: int
    chars: int
    duration: float = 0.0


@dataclass
class EvalResult:
    """What ``whisperft eval`` reports; ``metrics.json`` is its ``to_dict``."""

    wer: float
    cer: float
    wer_normalized: float
    cer_normalized: float
    num_utterances: int
    audio_seconds: float
    model: str
    language: str
    headline: str = "wer"
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d.update(self.extra)
        return d


def score(
    ids: Sequence[str],
    refs: Sequence[str],
    hyps: Sequence[str],
    language: str,
    durations: Sequence[float] | None = None,
) -> tuple[dict[str, float], list[Utterance]]:
    """Corpus-level WER/CER (total errors over total reference length), and per-utterance counts."""
    spaceless = get_language(language).spaceless if language not in (None, "auto") else False
    cunit = "char_nospace" if spaceless else "char"
    totals = dict.fromkeys(("we", "w", "ce", "c", "nwe", "nw", "nce", "nc"), 0)
    utts = []
    durations = durations or [0.0] * len(refs)
    for i, ref, hyp, dur in zip(ids, refs, hyps, durations, strict=True):
        we, w = edit_errors(ref, hyp, "word")
        ce, c = edit_errors(ref, hyp, cunit)
        nref, nhyp = normalize_text(ref), normalize_text(hyp)
        nwe, nw = edit_errors(nref, nhyp, "word")
        nce, nc = edit_errors(nref, nhyp, cunit)
        for k, v in zip(totals, (we, w, ce, c, nwe, nw, nce, nc), strict=True):
            totals[k] += v
        utts.append(Utterance(i, ref, hyp, we, w, ce, c, float(dur)))

    def rate(e: str, n: str) -> float:
        return totals[e] / totals[n] if totals[n] else (0.0 if totals[e] == 0 else 1.0)

    metrics = {
        "wer": rate("we", "w"),
        "cer": rate("ce", "c"),
        "wer_normalized": rate("nwe", "nw"),
        "cer_normalized": rate("nce", "nc"),
    }
    return metrics, utts


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


@torch.inference_mode()
def generate_ids(
    model: Any,
    input_features: torch.Tensor,
    language: str | None,
    task: str = "transcribe",
    num_beams: int = 1,
    max_new_tokens: int | None = None,
) -> torch.Tensor:
    from whisperft.models import is_multilingual

    kwargs: dict[str, Any] = {"num_beams": num_beams}
    if is_multilingual(model.config):
        kwargs["task"] = task
        if language not in (None, "auto"):
            kwargs["language"] = get_language(language).code
    limit = int(model.config.max_target_positions) - 4
    kwargs["max_new_tokens"] = min(max_new_tokens or limit, limit)
    dtype = next(model.parameters()).dtype
    return model.generate(input_features.to(model.device, dtype), **kwargs)


def evaluate_split(
    model: Any,
    tokenizer: Any,
    split: Any,
    language: str,
    *,
    batch_size: int = 16,
    num_beams: int = 1,
    max_new_tokens: int | None = None,
    indices: Sequence[int] | None = None,
    n_frames: int = 3000,
    progress: Callable[[int], None] | None = None,
) -> dict[int, str]:
    """Decode store rows in batches, longest first (less padding in the decoder). Returns {index: text}."""
    todo = np.asarray(list(range(len(split))) if indices is None else list(indices), dtype=np.int64)
    order = todo[np.argsort(-split.n_frames[todo], kind="stable")] if len(todo) else todo
    hyps: dict[int, str] = {}
    was_training = model.training
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = [int(i) for i in order[start : start + batch_size]]
        feats = pad_features([(split.frames(i), float(split.pad_value[i])) for i in idx], n_frames)
        texts = generate_texts(model, tokenizer, feats, language, num_beams=num_beams, max_new_tokens=max_new_tokens)
        hyps.update(zip(idx, texts, strict=True))
        if progress:
            progress(len(idx))
    model.train(was_training)
    return hyps


def write_predictions(path: Path, utts: list[Utterance]) -> None:
    import json

    from whisperft.io import atomic_write_text

    lines = [json.dumps(asdict(u), ensure_ascii=False) for u in utts]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
