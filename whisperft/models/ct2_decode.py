"""Decoding with a CTranslate2 Whisper (the runtime under faster-whisper): features -> token ids -> text.

Used by ``whisperft eval`` on an exported (int8) model and by export's parity check. Only ctranslate2
and tokenizers are imported; features come padded to Whisper's 30 s window, which every
CTranslate2 export has (``whisperft export`` restores it for short-window models).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from whisperft.errors import UsageError, WhisperftError
from whisperft.extras import missing_extra
from whisperft.languages import ModelLanguage, token_languages
from whisperft.text import Decoded, runaway_stop

MAX_LENGTH = 448  # Whisper's decoder positions; ctranslate2 4.8 stops a decode at half of it (224 tokens)


def ct2_runtime(folder: str | Path, device: str | None = None) -> tuple[Any, str, int]:
    """The ctranslate2 module, the device (CUDA when there is one) and the CPU threads for a CTranslate2
    Whisper folder, after checking the folder has its tokenizer; one clear error when the extra is missing."""
    try:
        import ctranslate2  # deferred: an optional extra, and slow to import
    except ImportError:
        raise missing_extra(
            f"{folder} (a CTranslate2 model)", ["ctranslate2"], "or convert it with whisperft import-ct2"
        ) from None
    if not (Path(folder) / "tokenizer.json").is_file():
        raise UsageError(f"{folder} has model.bin but no tokenizer.json; export it again with whisperft export")
    if not logging.getLogger("whisperft").isEnabledFor(logging.DEBUG):
        ctranslate2.set_log_level(logging.ERROR)  # its notes (float16 run as float32 on a CPU) only with --debug
    if device is None:
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return ctranslate2, device, threads


def folder_language(folder: str | Path) -> ModelLanguage | None:
    """The language a CTranslate2 folder was fine-tuned for: ``whisperft export`` writes it into config.json."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return None
    return ModelLanguage.read(config if isinstance(config, dict) else None)


class CT2Decoder:
    """A CTranslate2 Whisper folder loaded for batched greedy or beam decoding."""

    def __init__(self, folder: str | Path, compute_type: str = "default", device: str | None = None) -> None:
        ctranslate2, device, threads = ct2_runtime(folder, device)
        folder = Path(folder)
        try:
            self.model = ctranslate2.models.Whisper(
                str(folder), device=device, compute_type=compute_type, intra_threads=threads
            )
        except (RuntimeError, ValueError) as exc:
            raise WhisperftError(f"cannot load the CTranslate2 model {folder}: {exc}") from None
        self._ct2 = ctranslate2
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.eot = self._id("<|endoftext|>")
        self.own = folder_language(folder)
        self.languages = token_languages(lambda token: self.tokenizer.token_to_id(token) is not None)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.is_multilingual)

    @property
    def n_mels(self) -> int:
        return int(self.model.n_mels)

    def _id(self, token: str) -> int:
        found = self.tokenizer.token_to_id(token)
        if found is None:
            raise WhisperftError(f"the model's tokenizer.json has no {token} token; is it a Whisper model?")
        return int(found)

    def prompt(self, token: str | None, task: str = "transcribe") -> list[int]:
        """``<|startoftranscript|> <|lang|> <|task|> <|notimestamps|>``; English-only models take no language.

        ``token``: the code of the language token, as decided for the model (``languages.Decoding``'s
        ``token``); None for the model's own (``ModelLanguage.token``), English when it has none."""
        ids = [self._id("<|startoftranscript|>")]
        if self.multilingual:
            code = token or (self.own.token if self.own else "en")
            ids += [self._id(f"<|{code}|>"), self._id(f"<|{task}|>")]
        return [*ids, self._id("<|notimestamps|>")]

    def generate_ids(
        self, features: np.ndarray, prompt: list[int], num_beams: int = 1, max_new_tokens: int | None = None
    ) -> list[list[int]]:
        """Token ids after the prompt, per row of (B, n_mels, frames) features."""
        storage = self._ct2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        limit = MAX_LENGTH if max_new_tokens is None else min(MAX_LENGTH, len(prompt) + max_new_tokens)
        results = self.model.generate(storage, [prompt] * features.shape[0], beam_size=num_beams, max_length=limit)
        return [list(r.sequences_ids[0]) for r in results]

    def generate_decoded(
        self,
        features: np.ndarray,
        token: str | None,
        limits: list[int | None],
        num_beams: int = 1,
        stop_repeats: bool = True,
        task: str = "transcribe",
    ) -> list[Decoded]:
        """Decode one batch, each row bounded by its own limit (tokens after the prompt; None: the decoder's)
        and, with ``stop_repeats``, cut where ``text.runaway_stop``'s repetition rule says. ctranslate2 takes
        one ``max_length`` per batch and no stopping hook, so the batch runs to its longest limit and each
        row is cut afterwards: the texts and stop reasons of the PyTorch engine, not its saved time."""
        prompt = self.prompt(token, task)
        cap = MAX_LENGTH - len(prompt)
        rows = [min(cap, x or cap) for x in limits]
        out = []
        for seq, limit in zip(self.generate_ids(features, prompt, num_beams, max(rows)), rows, strict=True):
            content = [t for t in seq if t < self.eot]
            kept, why = runaway_stop(content, limit, repeats=stop_repeats)
            out.append(Decoded(self.decode(content[:kept]), why))
        return out

    def generate_texts(
        self,
        features: np.ndarray,
        token: str | None,
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        task: str = "transcribe",
    ) -> list[str]:
        """Greedy or beam decoding of one batch into text (special tokens dropped)."""
        ids = self.generate_ids(features, self.prompt(token, task), num_beams, max_new_tokens)
        return [self.decode(seq) for seq in ids]

    def decode(self, ids: list[int]) -> str:
        """Text of the tokens before the first special one (every Whisper special token is >= <|endoftext|>)."""
        return self.tokenizer.decode([t for t in ids if t < self.eot]).strip()
