"""What ``whisperft label`` takes. Light to import: the command line reads its defaults from here.

The filter follows openai-whisper's rules for a decode it does not trust (``transcribe.py``'s
``no_speech_threshold=0.6`` and ``compression_ratio_threshold=2.4``, which ``text`` names for every engine),
with a stricter log-probability floor than its ``logprob_threshold=-1.0`` (``MIN_AVG_LOGPROB``), and the
plausible speaking rate prepare applies (``text``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperft.checks import language_problems
from whisperft.text import (
    COMPRESSION_RATIO_THRESHOLD,
    MAX_CHARS_PER_SECOND,
    MAX_CLIP_SECONDS,
    MIN_CHARS_PER_SECOND,
    NO_SPEECH_PROB,
)
from whisperft.transcribe.request import BATCH_SIZE

MIN_CLIP_SECONDS = 1.0  # a shorter stretch of speech joins its neighbour, when the window has room
PAUSE_PAD_SECONDS = 0.15  # silence kept at each end of a clip (at most half the pause), as data.align keeps
# The least mean token log-probability (natural log, per token) of a label that is kept. Measured by
# benchmarks/bench_pseudo_label.py (Asterisk prompts, Spanish and French, a fine-tune as the teacher): at
# -0.5 rather than openai-whisper's -1.0 the kept labels' WER fell from 18.3% to 14.6% (es) and from 16.0% to
# 13.0% (fr), keeping 67% and 68% of the clips, and the student trained on them was better in both languages
# (BENCHMARKS.md, pseudo_label_*). Transcription keeps -1.0 (``text.LOG_PROB_FLOOR``): there a window is dropped,
# here only a training example.
MIN_AVG_LOGPROB = -0.5


@dataclass(frozen=True)
class LabelRequest:
    """Everything ``whisperft label`` takes. These defaults are the only copy: the CLI reads them.

    ``audio``: files or folders of recordings without text; ``model``: the teacher (a spec, run, folder or
    CTranslate2 folder; None: the newest finished run); ``out``: the folder that gets ``clips/``,
    ``manifest.csv`` and ``rejected.csv``; ``lang``: the recordings' language (None: the model's own);
    ``max_clip_seconds``: the longest clip cut at pauses; ``min_avg_logprob``, ``max_no_speech_prob``,
    ``max_compression_ratio``: the filter (a clip under ``min_avg_logprob`` is ``low_confidence``; one
    also over ``max_no_speech_prob`` is ``no_speech``; one over ``max_compression_ratio`` is
    ``repetition``); ``min_chars_per_second``/``max_chars_per_second``: the plausible speaking rate.
    """

    audio: tuple[str, ...]
    model: str | None
    out: Path
    lang: str | None = None
    batch_size: int = BATCH_SIZE
    num_beams: int | None = None
    compute_type: str = "default"
    max_clip_seconds: float = MAX_CLIP_SECONDS
    min_avg_logprob: float = MIN_AVG_LOGPROB
    max_no_speech_prob: float = NO_SPEECH_PROB
    max_compression_ratio: float = COMPRESSION_RATIO_THRESHOLD
    min_chars_per_second: float = MIN_CHARS_PER_SECOND
    max_chars_per_second: float = MAX_CHARS_PER_SECOND
    trust_pickle: bool = False
    quiet: bool = True

    def problems(self) -> list[str]:
        """Every usage error in the request, each naming its option."""
        out = []
        if not MIN_CLIP_SECONDS < self.max_clip_seconds <= MAX_CLIP_SECONDS:
            bounds = f"({MIN_CLIP_SECONDS:g}, {MAX_CLIP_SECONDS:g}]"
            out.append(f"--max-clip-seconds must be in {bounds}, got {self.max_clip_seconds}")
        if self.batch_size < 1 or (self.num_beams is not None and self.num_beams < 1):
            out.append("--batch-size and --num-beams take a number of 1 or more")
        if not 0 <= self.max_no_speech_prob <= 1:
            out.append(f"--max-no-speech-prob must be in [0, 1], got {self.max_no_speech_prob:g}")
        if not 0 <= self.min_chars_per_second < self.max_chars_per_second:
            out.append("--min-chars-per-second must be >= 0 and below --max-chars-per-second")
        out += language_problems(self.lang)
        if self.lang == "auto":
            out.append("--lang auto: a labelled set is in one language; name it (e.g. --lang es)")
        return out
