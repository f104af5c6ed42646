"""Log-mel features, computed exactly as Whisper's feature extractor does, but unpadded.

Whisper pads every clip to 30 s before its STFT, so the frames after the speech
all hold one value that depends only on the clip's maximum. We compute the real
frames alone (batched, in torch) and keep that pad value, so the collator can
rebuild the padded 30 s input bit for bit, from a fraction of the bytes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from whisperft.audio import SAMPLE_RATE

N_FFT = 400
HOP_LENGTH = 160
N_SAMPLES = 30 * SAMPLE_RATE  # Whisper's 30 s window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100


@lru_cache(maxsize=4)
def mel_filters(n_mels: int) -> torch.Tensor:
    """The Slaney mel filter bank Whisper uses, shape (n_mels, n_fft // 2 + 1)."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(
        num_frequency_bins=1 + N_FFT // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=8000.0,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(np.asarray(fb, dtype=np.float32)).T.contiguous()


def num_frames(num_samples: int) -> int:
    """Frames that see any real audio: the rest of a 30 s window is constant padding."""
    return min(N_FRAMES, math.ceil((num_samples + N_FFT // 2) / HOP_LENGTH))


def log_mel_batch(waves: list[np.ndarray], n_mels: int = 80) -> list[tuple[np.ndarray, float]]:
    """Compute unpadded Whisper log-mels for several clips at once.

    Returns, per clip, ``(frames, pad_value)``: frames has shape (T, n_mels), time-major,
    and pad_value is what the frames after T hold in Whisper's padded 30 s input.
    """
    if not waves:
        return []
    waves = [w[:N_SAMPLES] for w in waves]
    keep = [num_frames(len(w)) for w in waves]
    length = min(N_SAMPLES, max(k * HOP_LENGTH + N_FFT for k in keep))
    batch = torch.zeros(len(waves), length, dtype=torch.float32)
    for i, w in enumerate(waves):
        batch[i, : min(len(w), length)] = torch.from_numpy(np.asarray(w[:length], dtype=np.float32))
    window = torch.hann_window(N_FFT)
    stft = torch.stft(batch, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = mel_filters(n_mels) @ power  # (B, n_mels, frames)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    out = []
    for i, k in enumerate(keep):
        spec = log_spec[i, :, :k]
        peak = float(spec.max())
        spec = (torch.maximum(spec, torch.tensor(peak - 8.0)) + 4.0) / 4.0
        pad = (max(-10.0, peak - 8.0) + 4.0) / 4.0
        out.append((spec.T.contiguous().numpy(), pad))
    return out


def pad_features(items: list[tuple[np.ndarray, float]], n_frames: int = N_FRAMES) -> torch.Tensor:
    """Rebuild Whisper's padded input (B, n_mels, n_frames) from stored frames and pad values."""
    n_mels = items[0][0].shape[1]
    out = torch.empty(len(items), n_mels, n_frames, dtype=torch.float32)
    for i, (frames, pad) in enumerate(items):
        t = min(len(frames), n_frames)
        out[i, :, :t] = torch.from_numpy(np.asarray(frames[:t], dtype=np.float32)).T
        out[i, :, t:] = pad
    return out
