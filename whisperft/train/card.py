"""``final/README.md``: a Hugging Face model card for the fine-tuned model, and ``curves.png`` beside it.

YAML metadata as the Hub reads it (language, license, base_model, datasets, metrics, tags and a
``model-index`` with the measured validation WER), then a body with the before/after table, the
training curves, the config and the hardware.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml

from whisperft.config import Config
from whisperft.data.remote import local_store
from whisperft.data.store import FeatureStore
from whisperft.io import atomic_write_text
from whisperft.languages import Language, ModelLanguage, get_language
from whisperft.models.registry import SIZES
from whisperft.train.checkpoint import TrainState
from whisperft.train.curves import plot_curves

BUNDLED_BASES = {"bundled:base": "openai/whisper-base", "bundled:tiny.en": "openai/whisper-tiny.en"}
LICENSE = "apache-2.0"  # OpenAI's Whisper weights are Apache-2.0; a fine-tune inherits it
CURVES = "curves.png"  # training loss, learning rate and validation WER against step


def base_model_id(name: str) -> str | None:
    """The Hub id the run started from: sizes and bundled weights map to OpenAI's repos; a local folder to None."""
    if name in SIZES:
        return SIZES[name]
    if name in BUNDLED_BASES:
        return BUNDLED_BASES[name]
    if "/" in name and not Path(name).exists() and not name.startswith((".", "/", "~")):
        return name
    return None


def dataset_id(source: str) -> tuple[str, str]:
    """(type, name) for model-index from the store's source description: a Hub id when it came from the Hub."""
    if source.startswith("hub:"):
        parts = source[4:].split(":")
        return parts[0], source[4:]
    kind, _, path = source.rpartition(" ")
    name = f"{kind} {Path(path).name}" if kind else Path(source).name  # never a local absolute path
    return ("common_voice" if source.startswith("Common Voice") else "local"), name


def hardware() -> str:
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return f"{len(names)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def metadata(cfg: Config, source: str, results: dict[str, Any]) -> dict[str, Any]:
    """The card's YAML header."""
    lang = get_language(cfg.language)
    dtype, dname = dataset_id(source)
    meta: dict[str, Any] = {
        "language": [lang.code],
        "license": LICENSE,
        "library_name": "transformers",
        "pipeline_tag": "automatic-speech-recognition",
        "tags": ["whisper", "whisperft", "automatic-speech-recognition"],
        "metrics": ["wer"],
    }
    base = base_model_id(cfg.model.name)
    if base:
        meta["base_model"] = base
    if source.startswith("hub:"):
        meta["datasets"] = [dtype]
    name = Path(cfg.train.output_dir).name
    if results.get("after_wer") is not None:
        meta["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "automatic-speech-recognition", "name": "Automatic Speech Recognition"},
                        "dataset": {"type": dtype, "name": dname, "split": cfg.data.eval_split, "config": lang.code},
                        "metrics": [{"type": "wer", "value": round(100 * results["after_wer"], 2), "name": "WER"}],
                    }
                ],
            }
        ]
    return meta


def _percent(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}%"


def render_card(
    cfg: Config,
    source: str,
    results: dict[str, Any],
    curves: bool,
    own: ModelLanguage | None = None,
    pseudo: list[tuple[str, dict[str, Any]]] | None = None,
) -> str:
    """The whole README.md. ``results``: before_wer/before_cer (step 0), after_wer/after_cer (the best
    step), best_step, steps, train_seconds. ``own``: the model's language and the token it prompts with.
    ``pseudo``: (store name, its ``pseudo_labels`` metadata) of each source ``whisperft label`` made."""
    lang = get_language(cfg.language)
    name = Path(cfg.train.output_dir).name
    base = base_model_id(cfg.model.name) or cfg.model.name
    t = cfg.train
    lines = [
        "---",
        yaml.safe_dump(metadata(cfg, source, results), sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"Whisper fine-tuned for {lang.name.title()} ({lang.code}) from `{base}` with "
        f"[whisperft](https://pypi.org/project/whisperft/), on {dataset_id(source)[1]}.",
        "",
        "## Evaluation",
        "",
        f"Validation split `{cfg.data.eval_split}`, greedy decoding (`eval.num_beams: {cfg.eval.num_beams}`), "
        "orthographic text as in the data.",
        "",
        "| model | WER | CER |",
        "|---|---|---|",
        f"| before fine-tuning ({base}) | {_percent(results.get('before_wer'))} | "
        f"{_percent(results.get('before_cer'))} |",
        f"| after fine-tuning (step {results.get('best_step', '–')}) | {_percent(results.get('after_wer'))} | "
        f"{_percent(results.get('after_cer'))} |",
        "",
    ]
    if curves:
        lines += ["## Training curves", "", "![training loss, learning rate and validation WER](curves.png)", ""]
    lines += [
        "## Training",
        "",
        f"- steps: {results.get('steps')} of `train.max_steps: {t.max_steps}`; learning rate {t.learning_rate:g} "
        f"({t.lr_scheduler}, {t.warmup_steps} warm-up steps)",
        f"- batch: {t.batch_size} x {t.gradient_accumulation_steps} accumulation per process; mixed precision "
        f"`{t.mixed_precision}`",
        f"- hardware: {hardware()}; training time {results.get('train_seconds', 0) / 60:.1f} min",
        "",
        *_pseudo_label_lines(pseudo or []),
        "The run's config (`config.yaml` in this folder):",
        "",
        "```yaml",
        yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'asr = pipeline("automatic-speech-recognition", model="{name}")',
        'print(asr("audio.mp3")["text"])',
        "```",
        "",
        f"or `whisperft transcribe audio.mp3 --model {name}`; for faster-whisper, "
        f"`whisperft export {name} {name}-ct2 --to ct2`.",
        "",
        *_token_note(lang, own),
    ]
    return "\n".join(lines)


def _pseudo_label_lines(pseudo: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """How many hours of the training data are pseudo-labels, by which teacher, under which filter."""
    if not pseudo:
        return []
    lines = ["### Pseudo-labelled data", ""]
    for name, info in pseudo:
        f = info.get("filter", {})
        lines.append(
            f"- `{name}`: {float(info.get('hours', 0)):.2f} h transcribed by `{info.get('teacher')}` with "
            f"`whisperft label` (beam {info.get('num_beams')}), not by people. Kept where the mean token "
            f"log-probability is at least {f.get('min_avg_logprob')}, the text compresses at most "
            f"{f.get('max_compression_ratio')}x, no-speech probability at most {f.get('max_no_speech_prob')} "
            f"(with a low log-probability), and {f.get('min_chars_per_second')}-{f.get('max_chars_per_second')} "
            f"characters per second; rejected: {_reasons(info.get('rejected', {}))}."
        )
    return [*lines, ""]


def _reasons(rejected: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in rejected.items()) or "none"


def _token_note(lang: Language, own: ModelLanguage | None) -> list[str]:
    """For a language Whisper lacks: the token the model was trained under, and what to pass to clients."""
    if lang.whisper or own is None:
        return []
    if own.added_token:
        fallback = get_language(own.fallback) if own.fallback else None
        how = (
            f"This run added the token `{lang.token}` to Whisper's vocabulary. The pipeline prompts with it by "
            f'itself; to name it, pass `generate_kwargs={{"language": "{lang.token}"}}`.'
        )
        if fallback:
            how += (
                f" faster-whisper accepts only Whisper's language codes: `whisperft export --to ct2` moves the "
                f'trained token into {fallback.name.title()}\'s slot, so pass `language="{fallback.code}"` there.'
            )
    else:
        proxy = get_language(own.token)
        how = (
            f"It was trained under {proxy.name.title()}'s token `{proxy.token}`, which now means "
            f"{lang.name.title()} to this model. The pipeline prompts with it by itself; to name it, pass "
            f'`generate_kwargs={{"language": "{proxy.code}"}}`, and in faster-whisper `language="{proxy.code}"`. '
            f"Language detection that answers `{proxy.code}` on this model means {lang.name.title()}."
        )
    return [f"Whisper has no token for {lang.name.title()} ({lang.code}). {how}", ""]


def write_card(cfg: Config, state: TrainState, out: Path, final: Path, seconds: float) -> None:
    """curves.png (in the run folder ``out`` and in final/) and final/README.md, the model card."""
    plot_curves(state.history, state.best_step, out / CURVES)
    shutil.copyfile(out / CURVES, final / CURVES)
    evals = {r["step"]: r for r in state.history if "eval_wer" in r}
    before = evals.get(0, {})
    after = evals.get(state.best_step, {}) if state.best_step is not None else {}
    results = {
        "before_wer": before.get("eval_wer"),
        "before_cer": before.get("eval_cer"),
        "after_wer": after.get("eval_wer"),
        "after_cer": after.get("eval_cer"),
        "best_step": state.best_step,
        "steps": state.step,
        "train_seconds": seconds,
    }
    metas = [(name, FeatureStore(local_store(store)).meta, store, w) for name, store, w in cfg.data.sources()]
    source = " + ".join(str(m.get("source", s)) + (f" ({w:g})" if cfg.data.mix else "") for _, m, s, w in metas)
    pseudo = [(name, m["pseudo_labels"]) for name, m, _, _ in metas if isinstance(m.get("pseudo_labels"), dict)]
    own = ModelLanguage.read(json.loads((final / "config.json").read_text(encoding="utf-8")))
    atomic_write_text(final / "README.md", render_card(cfg, source, results, curves=True, own=own, pseudo=pseudo))
