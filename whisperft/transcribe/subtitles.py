"""Transcripts and the files they are written to: plain text, SRT, WebVTT and JSON with segments."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

FORMATS = ("txt", "srt", "vtt", "json")


@dataclass
class Segment:
    """A stretch of a recording and its text; ``start`` and ``end`` in seconds from the recording's start.

    ``words``: (start, end, word) in seconds, when word timestamps were asked for (cross-attention DTW
    over the model's alignment heads, as openai-whisper and faster-whisper time words). ``avg_logprob``
    and ``no_speech_prob``: the decoder's mean token log-probability and <|nospeech|> probability for the
    window the segment came from, where the engine reports them (faster-whisper does; None otherwise)."""

    start: float
    end: float
    text: str
    words: list[tuple[float, float, str]] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass
class Transcript:
    """One recording's transcript, as every format writes it; ``duration`` in seconds.

    Its segments are clamped to the audio when it is built (``clamp_segments``), whichever engine made them.
    """

    file: str
    language: str | None
    duration: float
    text: str
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.segments = clamp_segments(self.segments, self.duration)


def clamp_segments(segments: list[Segment], duration: float) -> list[Segment]:
    """The segments with ``0 <= start <= end <= duration`` (seconds): times past the audio become its end.

    Whisper's timestamp tokens run in 20 ms steps to 30 s whatever the chunk's length, so a decoder can
    end a cue after the audio (issue #18: a 0.3 s clip whose cue ended at 2.0 s). No segment is dropped,
    so the text is the same in every format; order is kept (the map is monotonic).
    """
    out = []
    for s in segments:
        start = min(max(s.start, 0.0), duration)
        out.append(replace(s, start=start, end=min(max(s.end, start), duration)))
    return out


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
    data = asdict(t)
    for seg in data["segments"]:
        if not seg["words"]:
            del seg["words"]  # only when word timestamps were asked for
        for key in ("avg_logprob", "no_speech_prob"):
            if seg[key] is None:
                del seg[key]  # only where the engine reports them
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
