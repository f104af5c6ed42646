"""``whisperft eval``: a model on a feature store (or any source prepare accepts) -> metrics.json.

The one import between stages: a raw source is first run through ``prepare`` into a temp store.
Each utterance's decoding is bounded by its duration and stopped when it repeats itself
(``models.decode.decode_rows``); metrics.json counts the utterances so stopped.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from whisperft.config import load_config
from whisperft.data.remote import is_url, local_store
from whisperft.data.store import FeatureStore, Split
from whisperft.errors import ConfigError, UsageError
from whisperft.evaluate.report import REPORT, render_report
from whisperft.evaluate.request import EvalRequest
from whisperft.features import N_FRAMES
from whisperft.io import atomic_write_json, atomic_write_text, is_ct2_folder
from whisperft.languages import Decoding, ModelLanguage, decode_language, get_language, token_languages
from whisperft.metrics import Utterance, score
from whisperft.models.ct2_decode import CT2Decoder
from whisperft.models.decode import decode_rows, generate_decoded
from whisperft.models.registry import load_model, load_processor, model_or_newest, resolve_model
from whisperft.models.whisper import context_frames, is_multilingual, own_language
from whisperft.prepare.request import PrepareRequest
from whisperft.prepare.run import prepare
from whisperft.text import CT2_BEAMS, PYTORCH_BEAMS, Decoded, stop_counts

logger = logging.getLogger("whisperft")

PREDICTIONS = "predictions.jsonl"
RATES = ("wer", "cer", "wer_normalized", "cer_normalized")  # EvalResult fields; the error counts go in extra


@dataclass
class EvalResult:
    """What ``whisperft eval`` reports; ``metrics.json`` is its ``to_dict``."""

    wer: float | None  # None (null) when the references have no words: the rate is undefined; see notes
    cer: float | None
    wer_normalized: float | None
    cer_normalized: float | None
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


def run_eval(
    request: EvalRequest,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EvalResult:
    """Evaluate ``request.model`` on ``request.data`` and write metrics.json and predictions.jsonl at
    ``request.metrics_path``. ``on_start`` is called with the number of utterances before decoding,
    ``progress`` with each batch's size after it. Raises ConfigError listing every problem of the request,
    UsageError when no language is known or the model cannot decode it, or the split is empty."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    spec = model_or_newest(request.model)
    model = _load(spec, request.trust_pickle)
    num_beams = request.num_beams or model.default_beams
    max_new_tokens = model.max_new_tokens if request.max_new_tokens is None else request.max_new_tokens
    with tempfile.TemporaryDirectory(prefix="whisperft-eval-") as tmp:
        store = _open_store(request.data, request.lang, model.source, Path(tmp))
        decoding = model.decoding(request.lang or store.language, spec)  # None: the model's own
        if decoding.detect or decoding.language is None:
            raise UsageError("no language known for this data; pass --lang")
        language, token = decoding.language, decoding.token
        split, sp = _pick_split(store, request.split, request.data)
        n = len(sp) if request.max_samples is None else min(request.max_samples, len(sp))
        if on_start:
            on_start(n)
        t0 = time.perf_counter()
        hyps = decode_rows(
            sp,
            lambda feats, limits, repeats: model.generate(feats, token, num_beams, limits, repeats),
            batch_size=request.batch_size,
            indices=range(n),
            n_frames=model.n_frames,
            progress=progress,
            max_new_tokens=max_new_tokens,
            bound=request.bound,
        )
        seconds = time.perf_counter() - t0
        durations = [float(sp.duration[i]) for i in range(n)]
        decoded = [hyps[i] for i in range(n)]
        metrics, utts = score(sp.ids[:n], sp.texts[:n], [d.text for d in decoded], language, durations)
        for u, d in zip(utts, decoded, strict=True):
            u.stop = d.stop
    counts = {k: v for k, v in metrics.items() if k not in RATES}
    counts.update(stop_counts(decoded), max_new_tokens=max_new_tokens, token_bound=request.bound)
    result = EvalResult(
        **{k: metrics[k] for k in RATES},
        num_utterances=n,
        audio_seconds=round(sum(durations), 3),
        model=spec,
        language=language,
        headline="cer" if get_language(language).spaceless else "wer",
        seconds=round(seconds, 3),
        extra={**counts, "split": split, "num_beams": num_beams, "data": str(request.data)},
    )
    out = request.metrics_path
    if out is not None:
        atomic_write_json(out, result.to_dict())
        write_predictions(out.with_name(PREDICTIONS), utts)
        if request.report:
            atomic_write_text(out.with_name(REPORT), render_report(result.to_dict(), utts))
    return result


@dataclass
class _Model:
    """What eval needs of either engine."""

    # features, language token to prompt with, beams, per-row token limits, stop on repetition -> one Decoded per row
    generate: Callable[[torch.Tensor, str, int, list[int | None], bool], list[Decoded]]
    multilingual: bool
    own: ModelLanguage | None  # the language the model was fine-tuned for, if any
    n_frames: int  # mel frames per encoder window
    source: str | None  # the model prepare uses for a raw source; None for a CTranslate2 folder
    max_new_tokens: int | None = None  # the run's eval.max_new_tokens, when the model is a run's
    languages: frozenset[str] | None = None  # codes of the language tokens it has (``token_languages``)
    default_beams: int = PYTORCH_BEAMS  # what transcribe decodes this engine with (``text.CT2_BEAMS``...)

    def decoding(self, requested: str | None, name: str) -> Decoding:
        """The language this model decodes ``requested`` in (``languages.decode_language``)."""
        return decode_language(requested, self.own, self.multilingual, self.languages, name)


def _load(model_spec: str, trust_pickle: bool) -> _Model:
    """A CTranslate2 folder through ctranslate2 (int8 on CPUs); anything else through PyTorch (CUDA if present)."""
    folder = Path(model_spec).expanduser()
    if is_ct2_folder(folder):
        ct2 = CT2Decoder(folder)

        def generate_ct2(feats: torch.Tensor, token: str, beams: int, limits: list, repeats: bool) -> list[Decoded]:
            return ct2.generate_decoded(feats.numpy(), token, limits, beams, repeats)

        return _Model(
            generate_ct2, ct2.multilingual, ct2.own, N_FRAMES, None, languages=ct2.languages, default_beams=CT2_BEAMS
        )
    path = resolve_model(model_spec)
    cuda = torch.cuda.is_available()
    model = load_model(path, trust_pickle=trust_pickle, dtype=torch.float16 if cuda else None).eval()
    if cuda:
        model.to("cuda")
    tokenizer = load_processor(path).tokenizer

    def generate_pt(feats: torch.Tensor, token: str, beams: int, limits: list, repeats: bool) -> list[Decoded]:
        return generate_decoded(model, tokenizer, feats, token, limits, num_beams=beams, stop_repeats=repeats)

    multilingual, frames = is_multilingual(model.config), context_frames(model.config)
    known = token_languages(tokenizer.get_vocab().__contains__)
    return _Model(generate_pt, multilingual, own_language(model), frames, path, _run_max_new_tokens(Path(path)), known)


def _run_max_new_tokens(folder: Path) -> int | None:
    """``eval.max_new_tokens`` of the run that saved ``folder`` (its config.yaml), else None."""
    saved = folder / "config.yaml"
    if not saved.is_file():
        return None
    try:
        return load_config(saved).eval.max_new_tokens
    except (ConfigError, UsageError) as exc:
        logger.warning("ignoring %s (%s): eval.max_new_tokens not taken from it", saved, exc)
        return None


def _open_store(data: str, lang: str | None, model_path: str | None, tmp: Path) -> FeatureStore:
    if is_url(data):
        return FeatureStore(local_store(data))
    if FeatureStore.is_store(data):
        return FeatureStore(data)
    if model_path is None:
        raise UsageError(
            f"--data {data} is not a feature store: a CTranslate2 model is evaluated on one; make it with "
            "whisperft prepare --source DATA --lang LANG --model MODEL_IT_WAS_EXPORTED_FROM"
        )
    if lang is None:
        raise UsageError(f"--data {data} is not a feature store, so --lang is needed to prepare it")
    logger.info("preparing %s for evaluation", data)
    return FeatureStore(prepare(PrepareRequest(data, lang, model_path, tmp / "store")).out)


def _pick_split(store: FeatureStore, split: str | None, data: str) -> tuple[str, Split]:
    """The requested split (default: test, else validation); an empty one is an error, never a WER of 0."""
    if split is None:
        split = "test" if "test" in store.splits else "validation"
        logger.info("evaluating on the %s split", split)
    sp = store.split(split)
    if len(sp) == 0:
        raise UsageError(
            f"--split {split}: {data} has no utterances in {split} (see prepare_report.json); nothing to score"
        )
    return split, sp


def write_predictions(path: Path, utts: list[Utterance]) -> None:
    """One JSON line per utterance: its ``Utterance`` fields (``stop``: None, "limit" or "repeat")."""
    lines = [json.dumps(asdict(u), ensure_ascii=False) for u in utts]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
