"""``whisperft transcribe``: audio of any length to text and subtitles.

Clips up to 30 s are decoded in one window; longer audio goes through Whisper's
sequential long-form algorithm (30 s windows that advance by the predicted
timestamps), with temperature fallback, a compression-ratio check and no-speech
detection so silence does not turn into hallucinated text. Files are batched.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.features import log_mel_batch, pad_features
from whisperft.models import context_frames

logger = logging.getLogger("whisperft")

FORMATS = ("txt", "srt", "vtt", "json")
AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".wma", ".aiff"}


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    file: str
    language: str | None
    duration: float
    text: str
    segments: list[Segment] = field(default_factory=list)


def format_timestamp(seconds: float, sep: str = ",", always_hours: bool = True) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (VTT), rounding to the millisecond."""
    ms = max(0, round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    if not always_hours and h == 0:
        return f"{m:02d}:{s:02d}{sep}{ms:03d}"
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(t: Transcript) -> str:
    blocks = []
    for i, seg in enumerate((s for s in t.segments if s.text.strip()), start=1):
        blocks.append(f"{i}\n{format_timestamp(seg.start)} --> {format_timestamp(seg.end)}\n{seg.text.strip()}\n")
    return "\n".join(blocks)


def to_vtt(t: Transcript) -> str:
    lines = ["WEBVTT", ""]
    for seg in t.segments:
        if seg.text.strip():
            lines += [f"{format_timestamp(seg.start, '.')} --> {format_timestamp(seg.end, '.')}", seg.text.strip(), ""]
    return "\n".join(lines)


def render(t: Transcript, fmt: str) -> str:
    if fmt == "txt":
        return t.text + "\n"
    if fmt == "srt":
        return to_srt(t)
    if fmt == "vtt":
        return to_vtt(t)
    return json.dumps(asdict(t), ensure_ascii=False, indent=2) + "\n"


def collect_audio(inputs: list[str]) -> list[Path]:
    """Expand folders into their audio files (sorted); keep files as given."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES))
        else:
            out.append(p)
    return out


class Transcriber:
    """A loaded model with its processor, ready to transcribe batches of audio."""

    def __init__(self, model: Any, processor: Any, device: str | None = None) -> None:
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        if device:
            self.model.to(device)
        self.n_mels = int(model.config.num_mel_bins)

    @property
    def multilingual(self) -> bool:
        from whisperft.models import is_multilingual

        return is_multilingual(self.model.config)

    @torch.inference_mode()
    def detect_language(self, features: torch.Tensor) -> list[str]:
        """Language codes detected from the first 30 s window of each item."""
        if not self.multilingual:
            return ["en"] * features.shape[0]
        dtype = next(self.model.parameters()).dtype
        window = context_frames(self.model.config)
        ids = self.model.detect_language(features[..., :window].to(self.model.device, dtype))
        toks = self.tokenizer.convert_ids_to_tokens(ids.view(-1).tolist())
        return [t.strip("<|>") for t in toks]

    @torch.inference_mode()
    def transcribe(
        self,
        audios: list[np.ndarray],
        language: str | None = None,
        task: str = "transcribe",
        num_beams: int = 1,
        timestamps: bool = True,
    ) -> list[tuple[str | None, str, list[Segment]]]:
        """Transcribe a batch of 16 kHz clips. Returns (language, text, segments) per clip."""
        from whisperft.languages import get_language

        lengths = [len(a) for a in audios]
        longest = max(lengths)
        window = context_frames(self.model.config)
        if longest <= window * 160:
            items = log_mel_batch(audios, self.n_mels)
            features = pad_features(items, window)
            attention = None
        else:
            fe = self.processor.feature_extractor(
                audios,
                sampling_rate=SAMPLE_RATE,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
            features, attention = fe.input_features, fe.attention_mask
        if language in (None, "auto"):
            langs: list[str | None] = (
                list(self.detect_language(features)) if self.multilingual else [None] * len(audios)
            )
        else:
            langs = [get_language(language).code] * len(audios)
        kwargs: dict[str, Any] = {
            "return_timestamps": timestamps,
            "num_beams": num_beams,
            "return_segments": True,
            "condition_on_prev_tokens": False,
            "no_speech_threshold": 0.6,
            "logprob_threshold": -1.0,
            "compression_ratio_threshold": 2.4,
            "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        }
        if self.multilingual:
            kwargs["task"] = task
            kwargs["language"] = [c for c in langs] if len(set(langs)) > 1 else langs[0]
        dtype = next(self.model.parameters()).dtype
        feats = features.to(self.model.device, dtype)
        if attention is not None:
            kwargs["attention_mask"] = attention.to(self.model.device)
        out = self.model.generate(feats, **kwargs)
        results = []
        segments_all = out["segments"] if isinstance(out, dict) and "segments" in out else None
        sequences = out["sequences"] if isinstance(out, dict) else out
        for b in range(len(audios)):
            duration = lengths[b] / SAMPLE_RATE
            segs: list[Segment] = []
            if segments_all is not None:
                for s in segments_all[b]:
                    text = _clean(self.tokenizer.decode(s["tokens"], skip_special_tokens=True))
                    start = float(s["start"])
                    end = min(float(s["end"]), duration)
                    if text and start < duration:
                        segs.append(Segment(round(start, 3), round(max(end, start), 3), text))
                text = " ".join(s.text for s in segs)
            else:
                text = _clean(self.tokenizer.decode(sequences[b], skip_special_tokens=True))
                if text:
                    segs = [Segment(0.0, round(duration, 3), text)]
            results.append((langs[b], text, segs))
        return results


def _clean(text: str) -> str:
    return " ".join(text.replace("\u200b", " ").split())


def transcribe_files(
    transcriber: Transcriber,
    files: list[Path],
    language: str | None,
    batch_size: int = 8,
    task: str = "transcribe",
    num_beams: int = 1,
) -> tuple[list[Transcript], list[tuple[Path, str]]]:
    """Transcribe files in batches (similar lengths together). Returns transcripts and per-file errors."""
    decoded: list[tuple[Path, np.ndarray]] = []
    errors: list[tuple[Path, str]] = []
    for f in files:
        try:
            decoded.append((f, decode_audio(f)))
        except AudioError as exc:
            errors.append((f, exc.detail if exc.reason != "empty_audio" else f"{f}: no audio samples"))
    decoded.sort(key=lambda x: len(x[1]))
    done: dict[Path, Transcript] = {}
    for start in range(0, len(decoded), batch_size):
        chunk = decoded[start : start + batch_size]
        outs = transcriber.transcribe([a for _, a in chunk], language, task=task, num_beams=num_beams)
        for (f, audio), (lang, text, segs) in zip(chunk, outs, strict=True):
            done[f] = Transcript(str(f), lang, round(len(audio) / SAMPLE_RATE, 3), text, segs)
    return [done[f] for f in files if f in done], errors
