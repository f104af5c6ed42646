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
from whisperft.features import N_FRAMES
from whisperft.io import atomic_write_json, atomic_write_text, is_ct2_folder
from whisperft.languages import ModelLanguage, decode_language, get_language, token_languages
from whisperft.metrics import Utterance, score
from whisperft.models.ct2_decode import CT2Decoder
from whisperft.models.decode import decode_rows, generate_decoded
from whisperft.models.registry import load_model, load_processor, resolve_model
from whisperft.models.whisper import context_frames, is_multilingual, own_language
from whisperft.prepare import prepare
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
    model_spec: str,
    data: str,
    split: str | None = None,
    lang: str | None = None,
    batch_size: int = 16,
    num_beams: int | None = None,
    max_samples: int | None = None,
    out: Path | None = None,
    trust_pickle: bool = False,
    progress: Callable[[int], None] | None = None,
    max_new_tokens: int | None = None,
    report: bool = False,
    bound: bool = True,
    on_start: Callable[[int], None] | None = None,
) -> EvalResult:
    """Evaluate ``model_spec`` (a model spec, run, or CTranslate2 folder) on ``data`` and write
    metrics.json and predictions.jsonl beside ``out``.

    ``num_beams``: None for the engine's default, the beam width ``transcribe`` decodes it with (so the WER
    measured is the WER transcribed). ``max_new_tokens``: a cap on tokens per utterance; None takes the
    run's ``eval.max_new_tokens`` when the model is a run's (its config.yaml). ``bound``: bound each
    utterance by its duration and stop repeats (``text.token_limit``, ``text.runaway_stop``); False
    decodes as before issue #18. ``on_start`` is called with the number of utterances before decoding,
    ``progress`` with each batch's size after it.
    """
    model = _load(model_spec, trust_pickle)
    num_beams = num_beams or model.default_beams
    if max_new_tokens is None:
        max_new_tokens = model.max_new_tokens
    with tempfile.TemporaryDirectory(prefix="whisperft-eval-") as tmp:
        store = _open_store(data, lang, model.source, Path(tmp))
        own = model.own.language.code if model.own else None
        language = lang or store.language or own
        if language is None:
            raise UsageError("no language known for this data; pass --lang")
        language = get_language(language).code
        decode_language(language, model.own, model.multilingual, model.languages, model_spec)
        split, sp = _pick_split(store, split, data)
        n = len(sp) if max_samples is None else min(max_samples, len(sp))
        if on_start:
            on_start(n)
        t0 = time.perf_counter()
        hyps = decode_rows(
            sp,
            lambda feats, limits, repeats: model.generate(feats, language, num_beams, limits, repeats),
            batch_size=batch_size, indices=range(n), n_frames=model.n_frames, progress=progress,
            max_new_tokens=max_new_tokens, bound=bound,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        durations = [float(sp.duration[i]) for i in range(n)]
        decoded = [hyps[i] for i in range(n)]
        metrics, utts = score(sp.ids[:n], sp.texts[:n], [d.text for d in decoded], language, durations)
        for u, d in zip(utts, decoded, strict=True):
            u.stop = d.stop
    counts = {k: v for k, v in metrics.items() if k not in RATES}
    counts.update(stop_counts(decoded), max_new_tokens=max_new_tokens, token_bound=bound)
    result = EvalResult(
        **{k: metrics[k] for k in RATES},
        num_utterances=n,
        audio_seconds=round(sum(durations), 3),
        model=model_spec,
        language=language,
        headline="cer" if get_language(language).spaceless else "wer",
        seconds=round(seconds, 3),
        extra={**counts, "split": split, "num_beams": num_beams, "data": str(data)},
    )
    if out is not None:
        atomic_write_json(Path(out), result.to_dict())
        write_predictions(Path(out).with_name(PREDICTIONS), utts)
        if report:
            atomic_write_text(Path(out).with_name(REPORT), render_report(result.to_dict(), utts))
    return result


@dataclass
class _Model:
    """What eval needs of either engine."""

    # features, language, beams, per-row token limits, stop on repetition -> one Decoded per row
    generate: Callable[[torch.Tensor, str, int, list[int | None], bool], list[Decoded]]
    multilingual: bool
    own: ModelLanguage | None  # the language the model was fine-tuned for, if any
    n_frames: int  # mel frames per encoder window
    source: str | None  # the model prepare uses for a raw source; None for a CTranslate2 folder
    max_new_tokens: int | None = None  # the run's eval.max_new_tokens, when the model is a run's
    languages: frozenset[str] | None = None  # codes of the language tokens it has (``token_languages``)
    default_beams: int = PYTORCH_BEAMS  # what transcribe decodes this engine with (``text.CT2_BEAMS``...)


def _load(model_spec: str, trust_pickle: bool) -> _Model:
    """A CTranslate2 folder through ctranslate2 (int8 on CPUs); anything else through PyTorch (CUDA if present)."""
    folder = Path(model_spec).expanduser()
    if is_ct2_folder(folder):
        ct2 = CT2Decoder(folder)

        def generate_ct2(feats: torch.Tensor, language: str, beams: int, limits: list, repeats: bool) -> list[Decoded]:
            return ct2.generate_decoded(feats.numpy(), language, limits, beams, repeats)

        return _Model(generate_ct2, ct2.multilingual, ct2.own, N_FRAMES, None, languages=ct2.languages,
                      default_beams=CT2_BEAMS)  # fmt: skip
    path = resolve_model(model_spec)
    cuda = torch.cuda.is_available()
    model = load_model(path, trust_pickle=trust_pickle, dtype=torch.float16 if cuda else None).eval()
    if cuda:
        model.to("cuda")
    tokenizer = load_processor(path).tokenizer

    def generate_pt(feats: torch.Tensor, language: str, beams: int, limits: list, repeats: bool) -> list[Decoded]:
        return generate_decoded(model, tokenizer, feats, language, limits, num_beams=beams, stop_repeats=repeats)

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
    return FeatureStore(prepare(data, lang, model_path, tmp / "store").out)


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
