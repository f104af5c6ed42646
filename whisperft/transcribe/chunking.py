"""Long audio -> chunks that fit the encoder window, cut at pauses, with silence left out.

An energy detector over 20 ms frames; nothing here needs the model.
"""

from __future__ import annotations

import numpy as np

from whisperft.audio import SAMPLE_RATE

FRAME = 320  # 20 ms energy frames


def speech_chunks(
    audio: np.ndarray,
    max_seconds: float = 30.0,
    min_silence_s: float = 0.3,
    pad_s: float = 0.2,
    floor_db: float = -50.0,
    range_db: float = 40.0,
) -> list[tuple[int, int]]:
    """Cut audio into chunks of at most ``max_seconds`` at pauses, dropping silence.

    Speech is any 20 ms frame within ``range_db`` of the loudest frame and above ``floor_db``
    dBFS. Pauses of ``min_silence_s`` separate regions; regions are padded, then packed
    greedily into chunks; a region longer than a chunk is cut at its quietest frame near
    the limit. Pure silence gives no chunks at all, so nothing can be hallucinated from it.
    """
    n = len(audio) // FRAME
    if n == 0:
        return [(0, len(audio))] if len(audio) and np.abs(audio).max() > 10 ** (floor_db / 20) else []
    frames = audio[: n * FRAME].reshape(n, FRAME).astype(np.float64)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    threshold = max(floor_db, float(db.max()) - range_db)
    speech = db > threshold
    if not speech.any():
        return []
    gap = int(min_silence_s * SAMPLE_RATE / FRAME)
    pad = int(pad_s * SAMPLE_RATE / FRAME)
    regions: list[list[int]] = []
    for i in np.flatnonzero(speech):
        if regions and i - regions[-1][1] <= gap:
            regions[-1][1] = int(i) + 1
        else:
            regions.append([int(i), int(i) + 1])
    limit = int(max_seconds * SAMPLE_RATE / FRAME)
    pieces: list[tuple[int, int]] = []
    for a, b in regions:
        a, b = max(0, a - pad), min(n, b + pad)
        while b - a > limit:
            lo = a + max(1, limit - int(5 * SAMPLE_RATE / FRAME))
            cut = lo + int(np.argmin(db[lo : a + limit]))
            pieces.append((a, cut))
            a = cut
        pieces.append((a, b))
    chunks: list[list[int]] = []
    for a, b in pieces:
        if chunks and b - chunks[-1][0] <= limit and a >= chunks[-1][1] - pad:
            chunks[-1][1] = b
        else:
            chunks.append([a, b])
    return [(a * FRAME, min(len(audio), b * FRAME)) for a, b in chunks]
