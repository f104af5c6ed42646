"""``whisperft label``'s stage: recordings without text -> clips cut at pauses, each labelled by the teacher
model, kept or rejected with a reason.

A recording is cut where Silero VAD hears pauses (``transcribe.vad.speech_regions``), into clips of at
most ``max_clip_seconds``: speech regions are joined while the clip fits, as faster-whisper's
``collect_chunks`` and whisperX join theirs. Every clip is decoded as one unit (without timestamps, as
the recipe trains), in batches that span recordings, on faster-whisper when the ct2 extra is installed
(a PyTorch teacher is converted once, as prepare's long recordings are: ``export.ct2.ct2_folder``).
Its label is then judged by openai-whisper's rules
for a decode not to trust, with the decoder's own numbers where the engine reports them (faster-whisper
does; the PyTorch engine gives no log-probabilities, so there only the repetition and rate rules apply).

Written to ``out``: ``clips/`` (16 kHz mono WAV, the rejected ones too, so that a review can take them
back), ``manifest.csv`` (what ``prepare --source`` reads: ``audio,text`` and the signals) and
``rejected.csv`` (the same columns, with ``reason`` and ``detail``) and ``label.json`` (the teacher, the
filter, the counts: ``label_info``). Every input file is in one of the two manifests.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from whisperft.audio import SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.tables import LABEL_INFO, LABEL_MANIFEST
from whisperft.errors import ConfigError, UsageError
from whisperft.export.ct2 import ct2_folder
from whisperft.io import RunLock, atomic_write_json, atomic_write_text
from whisperft.label.request import PAUSE_PAD_SECONDS, LabelRequest
from whisperft.models.registry import model_or_newest
from whisperft.text import compression_ratio, speech_chars
from whisperft.transcribe.decoding import DecodeOptions, Engine, Transcription
from whisperft.transcribe.files import collect_audio
from whisperft.transcribe.load import decide_language, load_engine
from whisperft.transcribe.vad import speech_regions

logger = logging.getLogger("whisperft")

MANIFEST, REJECTED, CLIPS = LABEL_MANIFEST, "rejected.csv", "clips"
COLUMNS = ("audio", "text", "source", "start", "end", "duration", "confidence", "avg_logprob", "no_speech_prob",
           "compression_ratio", "chars_per_second", "reviewed")  # fmt: skip
REJECTED_COLUMNS = (*COLUMNS, "reason", "detail")
Span = tuple[float, float]


@dataclass
class Clip:
    """One cut of a recording (seconds on it), its samples until written, and its label's signals."""

    source: Path
    start: float
    end: float
    samples: np.ndarray | None = None
    path: str = ""  # the clip's WAV, relative to the output folder
    text: str = ""
    avg_logprob: float | None = None  # the decoder's mean token log-probability (faster-whisper's)
    no_speech_prob: float | None = None  # its <|nospeech|> probability

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)

    @property
    def confidence(self) -> float | None:
        """The geometric mean of the label's token probabilities, exp(avg_logprob), in [0, 1]."""
        return None if self.avg_logprob is None else math.exp(self.avg_logprob)

    def row(self) -> dict[str, object]:
        def num(x: float | None, digits: int = 3) -> object:
            return "" if x is None else round(x, digits)

        rate = speech_chars(self.text) / self.duration if self.duration > 0 else 0.0
        return {
            "audio": self.path,
            "text": self.text,
            "source": str(self.source),
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "confidence": num(self.confidence),
            "avg_logprob": num(self.avg_logprob),
            "no_speech_prob": num(self.no_speech_prob),
            "compression_ratio": num(compression_ratio(self.text)),
            "chars_per_second": round(rate, 2),
        }


@dataclass
class LabelResult:
    """Where the manifests are, the clips kept, and the rejected rows by reason."""

    manifest: Path
    rejected_manifest: Path
    kept: int
    rejected: Counter = field(default_factory=Counter)
    files: int = 0
    seconds_kept: float = 0.0


def clip_spans(speech: list[Span], duration: float, max_seconds: float) -> list[Span]:
    """Clips of a recording of ``duration`` seconds, cut at the pauses between its ``speech`` regions:
    regions are joined while the clip stays within ``max_seconds``; a region longer than that is cut into
    equal parts. Each clip keeps up to ``PAUSE_PAD_SECONDS`` of the pause at each end, at most half of it."""
    joined: list[list[float]] = []
    for start, end in speech:
        if joined and end - joined[-1][0] <= max_seconds:
            joined[-1][1] = end
            continue
        parts = max(1, math.ceil((end - start) / max_seconds))
        step = (end - start) / parts
        joined += [[start + k * step, start + (k + 1) * step] for k in range(parts)]
    out = []
    for k, (start, end) in enumerate(joined):
        before = start - (joined[k - 1][1] if k else 0.0)
        after = (joined[k + 1][0] if k + 1 < len(joined) else duration) - end
        pad_before = min(PAUSE_PAD_SECONDS, before / 2 if k else before)
        pad_after = min(PAUSE_PAD_SECONDS, after / 2 if k + 1 < len(joined) else after)
        out.append((round(max(0.0, start - pad_before), 3), round(min(duration, end + pad_after), 3)))
    return out


def judge(clip: Clip, request: LabelRequest) -> tuple[str, str] | None:
    """(reason, detail) when the clip's label is not to be trusted, else None: openai-whisper's rules
    (``transcribe.py``: a compression ratio over 2.4 is a loop; a <|nospeech|> probability over 0.6 with a
    low mean log-probability is silence; a low mean log-probability is a failed decode), where low is under
    ``request.min_avg_logprob`` (``MIN_AVG_LOGPROB``, stricter than openai-whisper's -1.0), then the
    plausible speaking rate. The rules for a kept label are a conjunction, so the labels kept at a stricter
    floor are those kept at a looser one whose mean log-probability reaches it."""
    if not clip.text:
        return "no_speech", "the model heard no words"
    ratio = compression_ratio(clip.text)
    if ratio > request.max_compression_ratio:
        return "repetition", f"compression ratio {ratio:.2f} > {request.max_compression_ratio:g}: the label loops"
    low = clip.avg_logprob is not None and clip.avg_logprob < request.min_avg_logprob
    if low and clip.no_speech_prob is not None and clip.no_speech_prob > request.max_no_speech_prob:
        return "no_speech", f"no-speech probability {clip.no_speech_prob:.2f} > {request.max_no_speech_prob:g}"
    if low:
        return "low_confidence", f"mean token log-probability {clip.avg_logprob:.2f} < {request.min_avg_logprob:g}"
    rate = speech_chars(clip.text) / clip.duration
    if not request.min_chars_per_second <= rate <= request.max_chars_per_second:
        bounds = f"[{request.min_chars_per_second:g}, {request.max_chars_per_second:g}]"
        return "implausible_rate", f"{rate:.1f} characters per second, outside {bounds}"
    return None


def label(request: LabelRequest) -> LabelResult:
    """Label the request's recordings into ``request.out``. Raises ConfigError listing every problem of the
    request, UsageError when no audio is found or the model cannot decode the language (an English-only
    model asked for another), WhisperftError when another process writes the same folder. A file that
    cannot be decoded, or holds no speech, is a rejected row; the others go on."""
    problems = request.problems()
    if problems:
        raise ConfigError(problems)
    files = collect_audio(list(request.audio))
    if not files:
        raise UsageError(f"no audio files found in {', '.join(request.audio)}")
    spec = model_or_newest(request.model)
    teacher = ct2_folder(spec) or spec  # faster-whisper, batched, with the decoder's log-probabilities
    engine = load_engine(teacher, request.compute_type, request.trust_pickle, request.quiet, name=spec)
    decoding = decide_language(engine, request.lang)
    if decoding.detect:
        raise UsageError(f"{spec} has no language of its own: pass --lang, the language of the recordings")
    options = DecodeOptions(decoding, num_beams=request.num_beams, batch_size=request.batch_size, timestamps=False)
    lock = RunLock(request.out)
    lock.acquire()  # one writer per folder: a second label, or a review saving, waits its turn or is refused
    try:
        return _label_files(files, engine, options, request)
    finally:
        lock.release()


def _label_files(files: list[Path], engine: Engine, options: DecodeOptions, request: LabelRequest) -> LabelResult:
    """Cut, decode and judge every file's clips in batches across files; write both manifests."""
    out = Path(request.out)
    (out / CLIPS).mkdir(parents=True, exist_ok=True)
    kept: list[dict[str, object]] = []
    rejected: list[dict[str, object]] = []
    batch: list[Clip] = []
    stems = _stems(files)
    for item in _clips(files, request, rejected):
        batch.append(item)
        if len(batch) >= 4 * request.batch_size:
            _decode(batch, engine, options, request, stems, kept, rejected)
            batch = []
    _decode(batch, engine, options, request, stems, kept, rejected)
    manifest, rejects = out / MANIFEST, out / REJECTED
    write_rows(manifest, kept, COLUMNS)
    write_rows(rejects, rejected, REJECTED_COLUMNS)
    reasons = Counter(str(r["reason"]) for r in rejected)
    seconds = round(sum(float(r["duration"]) for r in kept), 3)  # type: ignore[arg-type]
    beams = options.num_beams or engine.default_beams
    info = label_info(request, options.decoding.language, beams, len(kept), reasons, seconds)
    atomic_write_json(out / LABEL_INFO, info)
    logger.info(
        "labelled %d clips (%.1f min) of %d files; rejected %d (%s)",
        len(kept),
        seconds / 60,
        len(files),
        len(rejected),
        ", ".join(f"{k} {v}" for k, v in reasons.items()) or "none",
    )
    return LabelResult(manifest, rejects, len(kept), reasons, len(files), seconds)


def label_info(
    request: LabelRequest, language: str | None, beams: int, kept: int, reasons: Counter, seconds: float
) -> dict[str, object]:
    """What ``label.json`` records: the teacher, the language, the beam width, the filter, and the clips kept
    (with their seconds) and rejected by reason. prepare copies it into the store, the card reports it."""
    return {
        "teacher": request.model or "newest run",
        "language": language,
        "num_beams": beams,
        "filter": {
            "min_avg_logprob": request.min_avg_logprob,
            "max_no_speech_prob": request.max_no_speech_prob,
            "max_compression_ratio": request.max_compression_ratio,
            "min_chars_per_second": request.min_chars_per_second,
            "max_chars_per_second": request.max_chars_per_second,
        },
        "kept": kept,
        "seconds_kept": seconds,
        "rejected": dict(sorted(reasons.items())),
    }


def _clips(files: list[Path], request: LabelRequest, rejected: list[dict[str, object]]) -> Iterator[Clip]:
    """Every file's clips, cut at pauses; a file that cannot be decoded or holds no speech is a rejected row."""
    for f in files:
        try:
            audio = decode_audio(f)
        except AudioError as exc:
            rejected.append(_file_row(f, "undecodable", exc.detail))
            continue
        duration = len(audio) / SAMPLE_RATE
        spans = clip_spans(speech_regions(audio), duration, request.max_clip_seconds)
        if not spans:
            rejected.append(_file_row(f, "no_speech", "no speech found by the VAD", duration))
        for a, b in spans:
            yield Clip(f, a, b, audio[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)])


def _file_row(f: Path, reason: str, detail: str, duration: float = 0.0) -> dict[str, object]:
    return {
        **dict.fromkeys(COLUMNS, ""),
        "source": str(f),
        "duration": round(duration, 3),
        "reason": reason,
        "detail": detail,
    }


def _decode(
    batch: list[Clip],
    engine: Engine,
    options: DecodeOptions,
    request: LabelRequest,
    stems: dict[Path, str],
    kept: list[dict[str, object]],
    rejected: list[dict[str, object]],
) -> None:
    """Decode a batch of clips, write their WAVs, and add each one's row to ``kept`` or ``rejected``."""
    if not batch:
        return
    out = Path(request.out)
    results = engine.transcribe([c.samples for c in batch], options)  # type: ignore[misc]
    for clip, result in zip(batch, results, strict=True):
        _take(clip, result)
        clip.path = _write_clip(clip, out, stems[clip.source])
        problem = judge(clip, request)
        if problem is None:
            kept.append(clip.row())
        else:
            rejected.append({**clip.row(), "reason": problem[0], "detail": problem[1]})


def _take(clip: Clip, result: Transcription) -> None:
    """The label and the decoder's signals: the duration-weighted mean log-probability of its segments,
    and their largest no-speech probability."""
    clip.text = result.text.strip()
    scored = [s for s in result.segments if s.avg_logprob is not None]
    if scored:
        weights = [max(s.end - s.start, 1e-3) if math.isfinite(s.end) else 1.0 for s in scored]
        clip.avg_logprob = sum(w * s.avg_logprob for w, s in zip(weights, scored, strict=True)) / sum(weights)  # type: ignore[misc]
        clip.no_speech_prob = max(s.no_speech_prob or 0.0 for s in scored)


def _write_clip(clip: Clip, out: Path, stem: str) -> str:
    """The clip as 16 kHz 16-bit WAV under ``out/clips``, named after its recording (``stem``) and its start
    in milliseconds."""
    path = out / CLIPS / f"{stem}-{round(clip.start * 1000):08d}.wav"
    sf.write(path, clip.samples, SAMPLE_RATE, subtype="PCM_16")
    clip.samples = None  # written: the memory goes back
    return f"{CLIPS}/{path.name}"


def _stems(files: list[Path]) -> dict[Path, str]:
    """A clip name prefix per recording: its stem, with -2, -3... for recordings of the same name."""
    seen: Counter = Counter()
    out = {}
    for f in files:
        seen[f.stem] += 1
        out[f] = f.stem if seen[f.stem] == 1 else f"{f.stem}-{seen[f.stem]}"
    return out


def write_rows(path: Path, rows: list[dict[str, object]] | list[dict[str, str]], columns: tuple[str, ...]) -> None:
    """``rows`` as a CSV with ``columns`` (others ignored, missing ones empty), written atomically."""
    atomic_write_text(path, _csv(rows, columns))


def _csv(rows: list[dict[str, object]] | list[dict[str, str]], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
