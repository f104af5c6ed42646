"""Transcription through CTranslate2: the int8 fast path for models exported with ``whisperft export``.

``transcribe --model FOLDER`` takes this path when FOLDER is a CTranslate2 model
(``model.bin`` + ``tokenizer.json``). Chunking, batching across files, timestamps
and subtitle writing are shared with the PyTorch path (``engine.Transcriber``);
only the encoder/decoder calls differ. The safeguards match the PyTorch path:
temperature fallback when the output repeats itself (gzip compression ratio) and
no-speech detection.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whisperft.errors import UsageError, WhisperftError
from whisperft.features import N_FRAMES, TIME_PRECISION
from whisperft.models.whisper import new_processor
from whisperft.transcribe.engine import Transcriber

TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)  # tried in turn after greedy decoding repeats itself
COMPRESSION_RATIO_THRESHOLD = 2.4
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
MAX_LENGTH = 448  # Whisper's decoder positions


def compression_ratio(text: str) -> float:
    """Bytes of the text over bytes gzipped: Whisper's sign of a decoder stuck repeating itself."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def split_segments(ids: list[int], timestamp_begin: int) -> list[tuple[float, float | None, list[int]]]:
    """(start, end, text ids) per segment of a timestamped token sequence, relative to its window.

    ``<|0.00|> a b <|2.40|><|2.40|> c <|4.00|>`` gives (0.0, 2.4, [a, b]) and (2.4, 4.0, [c]).
    Text before the first timestamp starts at 0; text after the last one has no end (None).
    """
    segments: list[tuple[float, float | None, list[int]]] = []
    start: float | None = None
    text: list[int] = []
    for t in ids:
        if t >= timestamp_begin:
            stamp = (t - timestamp_begin) * TIME_PRECISION
            if text:
                segments.append((start or 0.0, stamp, text))
                text, start = [], None
            else:
                start = stamp
        else:
            text.append(t)
    if text:
        segments.append((start or 0.0, None, text))
    return segments


class CT2Transcriber(Transcriber):
    """``Transcriber`` on a CTranslate2 model (int8 on CPUs, float16 on GPUs by default)."""

    def __init__(self, folder: str | Path, compute_type: str = "default", device: str | None = None) -> None:
        try:
            import ctranslate2  # deferred: an optional extra, and slow to import
        except ImportError:
            raise WhisperftError(
                f"{folder} is a CTranslate2 model: pip install 'whisperft[ct2]', "
                "or convert it with whisperft import-ct2"
            ) from None
        self._ct2 = ctranslate2
        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            raise UsageError(f"{folder} has model.bin but no tokenizer.json; export it again with whisperft export")
        if device is None:
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        try:
            self.model = ctranslate2.models.Whisper(
                str(folder), device=device, compute_type=compute_type, intra_threads=torch.get_num_threads()
            )
        except (RuntimeError, ValueError) as exc:
            raise WhisperftError(f"cannot load the CTranslate2 model {folder}: {exc}") from None
        self.n_mels = int(self.model.n_mels)
        self.processor = new_processor(folder / "tokenizer.json", self.n_mels)
        self.tokenizer = self.processor.tokenizer
        self.window = N_FRAMES  # CTranslate2 always encodes 30 s windows
        self.sot = int(self.tokenizer.convert_tokens_to_ids("<|startoftranscript|>"))
        self.notimestamps = int(self.tokenizer.convert_tokens_to_ids("<|notimestamps|>"))
        self.timestamp_begin = self.notimestamps + 1

    @property
    def multilingual(self) -> bool:
        return bool(self.model.is_multilingual)

    def _storage(self, features: torch.Tensor) -> Any:
        return self._ct2.StorageView.from_array(np.ascontiguousarray(features.numpy(), dtype=np.float32))

    def detect_language(self, features: torch.Tensor) -> list[str]:
        if not self.multilingual:
            return ["en"] * features.shape[0]
        found = self.model.detect_language(self._storage(features))
        return [pairs[0][0].strip("<|>") for pairs in found]

    def _prompt(self, lang: str | None, task: str, timestamps: bool) -> list[int]:
        ids = [self.sot]
        if self.multilingual:
            ids.append(int(self.tokenizer.convert_tokens_to_ids(f"<|{lang or 'en'}|>")))
            ids.append(int(self.tokenizer.convert_tokens_to_ids(f"<|{task}|>")))
        if not timestamps:
            ids.append(self.notimestamps)
        return ids

    def _decode(
        self, features: torch.Tensor, langs: list[str | None], task: str, num_beams: int, timestamps: bool
    ) -> list[list[tuple[float, float, str]]]:
        storage = self._storage(features)
        encoded = self.model.encode(storage)  # once per batch, reused by every fallback
        prompts = [self._prompt(lang, task, timestamps) for lang in langs]
        results = self.model.generate(
            encoded, prompts, beam_size=num_beams, max_length=MAX_LENGTH, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True,
        )  # fmt: skip
        ids = [r.sequences_ids[0] for r in results]
        retry = [b for b, seq in enumerate(ids) if self._repeats(seq)]
        for temperature in TEMPERATURES:
            if not retry:
                break
            sub = self.model.generate(
                self._select(encoded, features, retry), [prompts[b] for b in retry], beam_size=1,
                max_length=MAX_LENGTH, sampling_topk=0, sampling_temperature=temperature, return_scores=True,
            )  # fmt: skip
            for b, r in zip(retry, sub, strict=True):
                ids[b] = r.sequences_ids[0]
            retry = [b for b in retry if self._repeats(ids[b])]
        out = []
        for b, r in enumerate(results):
            n = max(1, len(r.sequences_ids[0]))
            avg_logprob = r.scores[0] * n / (n + 1)
            if r.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOGPROB_THRESHOLD:
                out.append([])
                continue
            segs = []
            for start, end, text_ids in split_segments(ids[b], self.timestamp_begin):
                text = " ".join(self.tokenizer.decode(text_ids, skip_special_tokens=True).split())
                if text:
                    segs.append((start, float("inf") if end is None else end, text))
            out.append(segs)
        return out

    def _repeats(self, ids: list[int]) -> bool:
        return compression_ratio(self.tokenizer.decode(ids, skip_special_tokens=True)) > COMPRESSION_RATIO_THRESHOLD

    def _select(self, encoded: Any, features: torch.Tensor, rows: list[int]) -> Any:
        """Encoder output for some batch rows: re-encoding them costs one encoder pass of len(rows)."""
        if len(rows) == features.shape[0]:
            return encoded
        return self.model.encode(self._storage(features[rows]))
