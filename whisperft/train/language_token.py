"""``language_token``: which language token a run trains under, and for a language Whisper lacks, which.

Whisper's decoder is prompted with one of its 99 language tokens. A language it lacks (Esperanto,
Guarani, Kyrgyz...) needs one too, and there are two known ways:

- a proxy: a related language's token. ``auto`` picks the language the base model itself detects
  most often on the training clips (what it already hears in them); or name one (``language_token: es``);
- ``new``: add ``<|eo|>`` to the tokenizer, its embedding initialised from that proxy's.

Either way the model folder records the language itself (``languages.MODEL_KEY``), so eval,
transcribe and serve use it with no ``--lang``, and the model card names the real language.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from whisperft.config import Config
from whisperft.data.store import Split
from whisperft.errors import WhisperftError
from whisperft.features import pad_features
from whisperft.languages import ModelLanguage, get_language
from whisperft.models.whisper import add_language_token, context_frames, detect_languages, own_language
from whisperft.train.checkpoint import find_checkpoints

logger = logging.getLogger("whisperft")

DETECT_CLIPS = 64  # training clips the base model listens to when choosing a proxy
DETECT_BATCH = 16


def detect_proxy(model: Any, tokenizer: Any, split: Split, n: int = DETECT_CLIPS) -> Counter[str]:
    """How often the model detects each of Whisper's languages on up to ``n`` training clips spread over
    ``split`` (on the GPU when there is one: the model goes there for training anyway)."""
    if torch.cuda.is_available():
        model.to(torch.device("cuda", torch.cuda.current_device()))
    rows = np.unique(np.linspace(0, len(split) - 1, num=min(n, len(split))).round().astype(int))
    window = context_frames(model.config)
    counts: Counter[str] = Counter()
    for k in range(0, len(rows), DETECT_BATCH):
        part = rows[k : k + DETECT_BATCH]
        feats = pad_features([(split.frames(int(i)), float(split.pad_value[i])) for i in part], window)
        counts.update(detect_languages(model, tokenizer, feats, whisper_only=True))
    return counts


def choose_language_token(cfg: Config, model: Any, tokenizer: Any, split: Split) -> ModelLanguage:
    """The run's ``ModelLanguage``; adds the token to model and tokenizer for ``new``.

    ``cfg.language_token`` is then concrete (a Whisper code, or ``new``), so the saved config.yaml
    says what was chosen; a resumed run keeps its first choice, and a model already fine-tuned for
    the language keeps its token.
    """
    lang = get_language(cfg.language)
    choice = _resumed(cfg) or cfg.language_token
    prior = own_language(model)  # a model fine-tuned for this language before: continue with its token
    prior = prior if prior is not None and prior.language.code == lang.code and not lang.whisper else None
    if prior is not None and (prior.added_token or choice == "auto"):
        cfg.language_token = "new" if prior.added_token else prior.token
        logger.info("%s was fine-tuned for %s under <|%s|>: keeping it", cfg.model.name, lang.name, prior.token)
        return prior
    if choice == "auto" and lang.whisper:
        cfg.language_token = lang.code
        return ModelLanguage(lang, lang.code)
    if choice == "new" and prior is not None:  # a proxy fine-tune gets its own token, from its proxy's row
        proxy = prior.token
    elif choice in ("auto", "new"):
        counts = detect_proxy(model, tokenizer, split)
        proxy, votes = counts.most_common(1)[0]
        seen = ", ".join(f"{code} {c}" for code, c in counts.most_common(4))
        logger.info(
            "Whisper has no token for %s (%s): the base model hears %s on %d of %d training clips (%s)",
            lang.name,
            lang.code,
            get_language(proxy).name,
            votes,
            sum(counts.values()),
            seen,
        )
    else:
        proxy = get_language(choice).code
    if choice == "new":
        new_id = add_language_token(model, tokenizer, lang, proxy)
        logger.info("language_token new: added %s (id %d), initialised from <|%s|>", lang.token, new_id, proxy)
        cfg.language_token = "new"
        return ModelLanguage(lang, lang.code, fallback=proxy)
    if not lang.whisper:
        logger.info("training %s under <|%s|> (language_token: new adds %s instead)", lang.name, proxy, lang.token)
    cfg.language_token = proxy
    return ModelLanguage(lang, proxy)


def prompt_token(cfg: Config) -> str:
    """The code of the token training prompts with, once ``choose_language_token`` has run."""
    lang = get_language(cfg.language)
    if cfg.language_token == "new" or (cfg.language_token == "auto" and lang.whisper):
        return lang.code
    if cfg.language_token == "auto":
        raise WhisperftError(f"no language token chosen yet for {lang.name}")  # choose_language_token sets one
    return get_language(cfg.language_token).code


def _resumed(cfg: Config) -> str | None:
    """The token a run chose before, when it resumes from a checkpoint."""
    saved = Path(cfg.train.output_dir) / "config.yaml"
    if not (find_checkpoints(Path(cfg.train.output_dir)) and saved.is_file()):
        return None
    before = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    if before.get("language") != cfg.language:
        return None
    chosen = before.get("language_token")
    if chosen and cfg.language_token not in ("auto", chosen):
        logger.warning("language_token %s: this run started with %s and resumes with it", cfg.language_token, chosen)
    return chosen
