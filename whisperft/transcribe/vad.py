"""Speech or not, for the PyTorch engine: Silero VAD, the detector faster-whisper runs on the CTranslate2 path.

``chunking`` decides where to cut a recording; this decides whether a chunk holds speech at all. Loud
non-speech (a fan, brown or pink noise) passes any energy threshold, and Whisper handed only noise
invents text: 5 s of pink noise came out as Japanese "thanks for watching" under ``--lang auto``
(issue #18), though generation already drops segments by faster-whisper's no-speech rule. The
CTranslate2 path gave nothing, because faster-whisper's Silero VAD finds no speech in it. The same
model (Silero VAD v6, here from the ``silero-vad`` package, which needs only torch) with
faster-whisper's settings gives both paths one answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from whisperft.audio import SAMPLE_RATE

_THREADS = torch.get_num_threads()
from silero_vad import get_speech_timestamps, load_silero_vad  # noqa: E402

torch.set_num_threads(_THREADS)  # importing silero_vad sets torch to one thread; Whisper needs them all

# faster_whisper.vad.VadOptions' defaults (1.2.1), which fw_engine runs: a 32 ms window is speech when
# its probability reaches THRESHOLD, and with min_speech_duration_ms=0 one such window makes a region.
THRESHOLD = 0.5
WINDOW = 512  # samples: the window Silero VAD takes at 16 kHz (32 ms)

_model = None
_lock = threading.Lock()  # the model keeps recurrent state between windows; serve calls from several threads


@contextmanager
def _silero() -> Iterator[Any]:
    """The model (loaded on first use), held under the lock, in inference mode, on one torch thread: a tiny
    recurrent net run 32 ms at a time gains only synchronisation from more threads (on two busy cores,
    two threads took 3-8x as long as one), so it runs on one, as Silero's own setup does."""
    global _model
    with _lock, torch.inference_mode():
        if _model is None:
            _model = load_silero_vad()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield _model
        finally:
            torch.set_num_threads(threads)


def has_speech(audio: np.ndarray) -> bool:
    """Whether Silero VAD hears speech in 16 kHz mono float audio of shape (samples,).

    True as soon as one 32 ms window's speech probability reaches ``THRESHOLD``, the condition on
    which faster-whisper's ``get_speech_timestamps`` (min_speech_duration_ms=0) opens a region. It
    stops there, so speech costs a few windows (10 minutes of espeak-ng speech in 22 chunks: 0.3 s);
    noise is read to its end, about 1 s per minute of audio on one CPU thread. Loads the model on
    first use.
    """
    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    with _silero() as model:
        model.reset_states()
        for i in range(0, len(wav), WINDOW):
            window = torch.nn.functional.pad(wav[i : i + WINDOW], (0, max(0, i + WINDOW - len(wav))))
            if model(window, SAMPLE_RATE).item() >= THRESHOLD:
                return True
        return False


# Pauses for cutting a long recording into clips (prepare of long recordings, issue #21): Silero's
# defaults (30 ms of padding on each side of speech), with silences from 150 ms, the shortest pause
# readers make between sentences (a comma's is 100-300 ms; the clip cutter picks among them by word times).
MIN_SILENCE_MS = 150
SPEECH_PAD_MS = 30


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in seconds of each stretch of speech that Silero VAD finds in 16 kHz mono float audio
    of shape (samples,); the silences between them are at least ``MIN_SILENCE_MS - 2 * SPEECH_PAD_MS``.
    About 1 s per minute of audio on one CPU thread."""
    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    with _silero() as model:
        found = get_speech_timestamps(
            wav,
            model,
            threshold=THRESHOLD,
            sampling_rate=SAMPLE_RATE,
            min_silence_duration_ms=MIN_SILENCE_MS,
            speech_pad_ms=SPEECH_PAD_MS,
            return_seconds=False,
        )
    return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in found]
