"""prepare of long recordings with their text: transcribe each with word times, align, hand on the clips.

Each recording (``data.longform``) is decoded whole, its speech found by Silero VAD
(``transcribe.vad.speech_regions``), transcribed with word timestamps by the aligning model (bundled base
by default; a fine-tune in the language aligns better), and aligned to its text (``data.align``). Each
clip becomes a row whose audio is the cut; everything else becomes a skipped row with its reason, so
prepare_report.json accounts for the whole recording:

- ``not_read``: a unit of the text not found in the transcript (a heading, an unread paragraph, or
  speech the transcriber missed);
- ``mismatch``: found, but read otherwise than written (local CER over ``--max-cer``);
- ``no_pause`` / ``too_long``: no pause to cut at; ``untranscribed_speech``: the clip would hold speech
  the transcript lacks;
- ``not_in_text``: speech that matches no text (the reader's introduction, an added paragraph);
- ``no_speech``: a stretch of ``MIN_NO_SPEECH_S`` or more without speech (music, long silence), or a unit
  whose words the VAD does not hear;
- for a whole recording: the audio errors of ``audio.decode_audio`` (``undecodable``...),
  ``unreadable_text``, and ``alignment_failed`` (transcription or alignment raised; the run goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.align import NO_SPEECH, Alignment, AlignOptions, align, pauses
from whisperft.data.longform import Recording, read_units
from whisperft.data.sources import Row, Source
from whisperft.errors import UsageError
from whisperft.export.ct2 import ct2_folder
from whisperft.languages import Language
from whisperft.transcribe.decoding import DecodeOptions, Engine
from whisperft.transcribe.load import load_engine
from whisperft.transcribe.vad import speech_regions

logger = logging.getLogger("whisperft")

NOT_IN_TEXT = "not_in_text"
MIN_NO_SPEECH_S = 3.0  # a pause between paragraphs is shorter; music or a break is not
SUMMARY = "alignment.json"  # in the store, beside prepare_report.json
CLIP_FIELDS = ("start", "end", "speech_start", "speech_end", "cer", "text")


@dataclass
class RecordingSummary:
    """What became of one recording, in seconds."""

    recording: str
    seconds: float = 0.0
    speech: float = 0.0
    aligned: float = 0.0
    not_in_text: float = 0.0
    no_speech: float = 0.0
    problem: str | None = None
    clips: list[dict[str, Any]] = field(default_factory=list)  # id, start, end, speech_start/end, cer, text


@dataclass
class AlignSummary:
    """The recordings aligned so far; ``to_dict`` gives hours."""

    model: str
    max_cer: float
    recordings: list[RecordingSummary] = field(default_factory=list)

    def to_dict(self, kept_hours: float) -> dict[str, Any]:
        total = {
            k: round(sum(getattr(r, k) for r in self.recordings) / 3600, 4)
            for k in ("seconds", "speech", "aligned", "not_in_text", "no_speech")
        }
        return {
            "model": self.model,
            "max_cer": self.max_cer,
            "hours_recorded": total["seconds"],
            "hours_speech": total["speech"],
            "hours_aligned": total["aligned"],
            "hours_recovered": round(kept_hours, 4),
            "hours_not_in_text": total["not_in_text"],
            "hours_no_speech": total["no_speech"],
            "recordings": [vars(r) for r in self.recordings],
        }


class LongformSource:
    """A ``Source`` of clips cut from long recordings, aligned lazily split by split, and its summary."""

    def __init__(self, recordings: list[Recording], language: Language, model: str, options: AlignOptions) -> None:
        self.recordings, self.language, self.options = recordings, language, options
        self.summary = AlignSummary(model, options.max_cer)
        self._spec = model
        self._engine: Engine | None = None
        self._options: DecodeOptions | None = None  # decided with the engine's language, when it loads

    def source(self, description: str) -> Source:
        splits = dict.fromkeys(r.split for r in self.recordings)
        return Source(
            f"long recordings {description} (aligned with {self._spec})",
            {s: (lambda s=s: self._rows(s)) for s in splits},
        )

    def _load(self) -> Engine:
        """The aligning engine; UsageError (exit 2) for a model that cannot time words."""
        if self._engine is None:
            try:
                engine = load_engine(ct2_folder(self._spec) or self._spec)
                self._options = DecodeOptions(engine.decoding(self.language.code), words=True)
            except UsageError as exc:
                raise UsageError(f"--align-model {self._spec}: {exc}") from None
            config = getattr(getattr(engine, "model", None), "generation_config", None)  # PyTorch engines only
            if config is not None and not getattr(config, "alignment_heads", None):
                raise UsageError(
                    f"--align-model {self._spec}: its generation_config.json has no alignment_heads, which word "
                    "timestamps need; align with bundled:base or a fine-tune of an OpenAI checkpoint"
                )
            self._engine = engine
        return self._engine

    def _rows(self, split: str) -> Iterator[Row]:
        for rec in (r for r in self.recordings if r.split == split):
            yield from self._recording_rows(rec)

    def _recording_rows(self, rec: Recording) -> Iterator[Row]:
        summary = RecordingSummary(rec.id)
        self.summary.recordings.append(summary)
        try:
            units = read_units(rec.text)
            audio = decode_audio(rec.audio)
        except (AudioError, UsageError, OSError) as exc:
            summary.problem = str(getattr(exc, "detail", exc))
            reason = exc.reason if isinstance(exc, AudioError) else "unreadable_text"
            yield Row(rec.id, None, None, rec.origin, reason, summary.problem)
            return
        duration = len(audio) / SAMPLE_RATE
        engine = self._load()
        assert self._options is not None  # set by _load with the engine
        try:
            speech = speech_regions(audio)
            segments = engine.transcribe([audio], self._options)[0].segments
            found = align(units, [w for seg in segments for w in seg.words], speech, duration, self.options)
        except (RuntimeError, ValueError, MemoryError) as exc:  # one recording's failure ends nothing else
            summary.problem = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            logger.warning("%s: transcription or alignment failed (%s); skipped", rec.origin, summary.problem)
            yield Row(rec.id, None, None, rec.origin, "alignment_failed", summary.problem)
            return
        summary.seconds, summary.speech = round(duration, 3), round(sum(b - a for a, b in speech), 3)
        summary.aligned = round(sum(c.duration for c in found.clips), 3)
        logger.info(
            "%s: %d clips (%.1f of %.1f min) from %d sentences",
            rec.origin,
            len(found.clips),
            summary.aligned / 60,
            duration / 60,
            len(units),
        )
        yield from _rows_of(rec, audio, found, speech, duration, summary)


def _rows_of(
    rec: Recording,
    audio: Any,
    found: Alignment,
    speech: list[tuple[float, float]],
    duration: float,
    summary: RecordingSummary,
) -> Iterator[Row]:
    """The clips as rows, then a skipped row for every unit, stretch of other speech, or silence left out."""
    for k, clip in enumerate(found.clips):
        cut = audio[int(clip.start * SAMPLE_RATE) : int(clip.end * SAMPLE_RATE)]
        summary.clips.append({"id": f"{rec.id}_{k:04d}", **{f: getattr(clip, f) for f in CLIP_FIELDS}})
        yield Row(f"{rec.id}_{k:04d}", cut, clip.text, f"{rec.origin} {_span(clip.start, clip.end)}")
    for skip in found.skipped:
        origin = f"{rec.origin} sentence {skip.unit.index + 1}"
        yield Row(f"{rec.id}_s{skip.unit.index}", None, skip.unit.text, origin, skip.reason, skip.detail)
    for start, end, text in found.extra:
        summary.not_in_text += end - start
        detail = f"speech that matches no text: {text[:80]!r}"
        yield Row(f"{rec.id}_x{start:.0f}", None, None, f"{rec.origin} {_span(start, end)}", NOT_IN_TEXT, detail)
    for a, b in pauses(speech, duration):
        if b - a >= MIN_NO_SPEECH_S:
            summary.no_speech += b - a
            detail = f"{b - a:.1f} s without speech (music or silence)"
            yield Row(f"{rec.id}_n{a:.0f}", None, None, f"{rec.origin} {_span(a, b)}", NO_SPEECH, detail)
    summary.not_in_text, summary.no_speech = round(summary.not_in_text, 3), round(summary.no_speech, 3)


def _span(start: float, end: float) -> str:
    return f"{start:.2f}-{end:.2f} s"
