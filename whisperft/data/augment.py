"""Augmentation for training (``data.augment``), seeded and off by default.

Waveform operations (they need the store's audio track, ``prepare --audio opus``), applied in
this order, each with its own probability:

- speed: resample so the clip plays ``factor`` times faster (pitch moves with it, as on tape);
- pitch: shift by semitones and keep the duration (resample, then a phase-vocoder time stretch);
- gain: scale by decibels, clipped to [-1, 1] as a recorder would;
- noise: add noise at a signal-to-noise ratio drawn from a range, from a folder of recordings
  or generated (white, pink or brown);
- telephone: pass the clip through a telephone channel (the 300-3400 Hz band, 8 kHz, 8-bit G.711
  µ-law or A-law), last, since the line comes after the room.

SpecAugment's time and frequency masks work on the log-mel frames inside the model (Whisper's
``apply_spec_augment``), so they need no audio. Every draw comes from a generator seeded by
(seed, epoch, clip), so an example is augmented the same way in a resumed run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import soxr

from whisperft.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, decode_audio
from whisperft.data.store import Split
from whisperft.features import log_mel

NOISE_COLORS = ("white", "pink", "brown")
NOISE_CACHE_SECONDS = 600.0  # decoded noise recordings kept per worker

# The telephone channel: a G.711 PCM line (ITU-T G.711) behind G.712's band filters.
TELEPHONE_RATE = 8_000  # G.711: 8000 samples/s x 8 bits = the 64 kb/s of one telephone channel
TELEPHONE_BAND = (300.0, 3400.0)  # G.712's passband, Hz: flat (gain 1) between these
TELEPHONE_EDGES = (200.0, 3600.0)  # our raised-cosine edges reach 0 here, inside the 4000 Hz of 8 kHz sampling
TELEPHONE_PAD = 400  # 50 ms of zeros at 8 kHz each side: the edges ring for about 1 / 100 Hz = 10 ms
MULAW_MU = 255.0  # G.711 µ-law (North America, Japan)
ALAW_A = 87.6  # G.711 A-law (Europe and most of the rest)
G711_STEPS = 127  # 8 bits: a sign and 127 steps of the companded magnitude either side of 0 (255 levels)
TELEPHONE_CODECS = ("mulaw", "alaw")


@dataclass
class AugmentSettings:
    """``data.augment``: every probability is 0 (off) unless set."""

    speed_prob: float = 0.0  # chance that a clip plays faster or slower (pitch moves with it); refused with data.pack
    speed_range: list[float] = field(default_factory=lambda: [0.9, 1.1])  # [low, high] speed factor, within [0.5, 2.0]
    pitch_prob: float = 0.0  # chance that a clip's pitch moves, at the same length
    pitch_semitones: list[float] = field(default_factory=lambda: [-2.0, 2.0])  # [low, high] pitch shift in semitones
    gain_prob: float = 0.0  # chance that a clip gets louder or softer
    gain_db: list[float] = field(default_factory=lambda: [-6.0, 6.0])  # [low, high] gain in dB
    noise_prob: float = 0.0  # chance that noise is added to a clip
    noise_snr_db: list[float] = field(
        default_factory=lambda: [5.0, 25.0]
    )  # [low, high] signal-to-noise ratio of the added noise, in dB
    noise_dir: str | None = None  # a folder of noise recordings; none: generated white, pink or brown noise
    telephone_prob: float = 0.0  # a telephone channel (300-3400 Hz, 8 kHz, 8-bit G.711), applied last
    telephone_codec: Literal["mulaw", "alaw", "random"] = "random"  # random: either, drawn per clip
    spec_augment: bool = False  # SpecAugment masks on the log-mel frames (Whisper's apply_spec_augment)
    mask_time_prob: float = 0.05  # SpecAugment: share of frames masked in time
    mask_time_length: int = 10  # SpecAugment: frames per time mask
    mask_feature_prob: float = 0.05  # SpecAugment: share of mel bins masked
    mask_feature_length: int = 10  # SpecAugment: mel bins per frequency mask

    @property
    def needs_audio(self) -> bool:
        probs = (self.speed_prob, self.pitch_prob, self.gain_prob, self.noise_prob, self.telephone_prob)
        return any(p > 0 for p in probs)

    def problems(self) -> list[str]:
        out = []
        for key in (
            "speed_prob",
            "pitch_prob",
            "gain_prob",
            "noise_prob",
            "telephone_prob",
            "mask_time_prob",
            "mask_feature_prob",
        ):
            if not (0 <= getattr(self, key) <= 1):
                out.append(f"data.augment.{key}: must be in [0, 1], got {getattr(self, key)}")
        for key in ("speed_range", "pitch_semitones", "gain_db", "noise_snr_db"):
            pair = getattr(self, key)
            if len(pair) != 2 or pair[0] > pair[1]:
                out.append(f"data.augment.{key}: expected [low, high], got {pair}")
        if len(self.speed_range) == 2 and not (self.speed_range[0] >= 0.5 and self.speed_range[1] <= 2.0):
            out.append(f"data.augment.speed_range: keep it within [0.5, 2.0], got {self.speed_range}")
        if self.noise_dir is not None and not Path(self.noise_dir).expanduser().is_dir():
            out.append(f"data.augment.noise_dir: no such folder {self.noise_dir}")
        for key in ("mask_time_length", "mask_feature_length"):
            if getattr(self, key) <= 0:
                out.append(f"data.augment.{key}: must be positive, got {getattr(self, key)}")
        return out


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster: ``len / factor`` samples, pitch raised by ``factor``."""
    return soxr.resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ").astype(np.float32)


def time_stretch(audio: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Play ``rate`` times faster without changing the pitch (a phase vocoder): about ``len / rate`` samples."""
    window = np.hanning(n_fft).astype(np.float32)
    padded = np.pad(audio, (n_fft // 2, n_fft // 2 + hop))
    n = 1 + (len(padded) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n] * window
    spec = np.fft.rfft(frames, axis=1)
    expected = 2 * np.pi * hop * np.arange(spec.shape[1]) / n_fft  # phase advance per hop of each bin
    steps = np.arange(0, n - 1, rate)
    phase = np.angle(spec[0])
    out = np.zeros((len(steps), spec.shape[1]), np.complex64)
    for k, t in enumerate(steps):
        i, frac = int(t), t - int(t)
        out[k] = ((1 - frac) * np.abs(spec[i]) + frac * np.abs(spec[i + 1])) * np.exp(1j * phase)
        delta = np.angle(spec[i + 1]) - np.angle(spec[i]) - expected
        phase = phase + expected + (delta - 2 * np.pi * np.round(delta / (2 * np.pi)))
    frames_out = np.fft.irfft(out, n=n_fft, axis=1) * window
    length = n_fft + hop * (len(steps) - 1)
    signal, norm = np.zeros(length, np.float32), np.zeros(length, np.float32)
    for k, frame in enumerate(frames_out):
        signal[k * hop : k * hop + n_fft] += frame
        norm[k * hop : k * hop + n_fft] += window**2
    signal = signal / np.maximum(norm, 1e-3)
    return signal[n_fft // 2 : n_fft // 2 + round(len(audio) / rate)].astype(np.float32)


def shift_pitch(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Raise (or lower) the pitch by ``semitones`` and keep the length."""
    ratio = 2 ** (semitones / 12)
    stretched = time_stretch(audio, 1 / ratio)  # longer by ``ratio``, same pitch
    out = change_speed(stretched, ratio)  # back to the length, pitch times ``ratio``
    return _fit(out, len(audio))


def apply_gain(audio: np.ndarray, db: float) -> np.ndarray:
    return np.clip(audio * np.float32(10 ** (db / 20)), -1.0, 1.0).astype(np.float32)


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Noise with a 1/f^0 (white), 1/f (pink) or 1/f^2 (brown) power spectrum, unit power."""
    white = rng.standard_normal(n).astype(np.float32)
    if color != "white":
        spec = np.fft.rfft(white)
        f = np.maximum(np.arange(len(spec)), 1.0)
        spec /= f ** (0.5 if color == "pink" else 1.0)
        white = np.fft.irfft(spec, n=n).astype(np.float32)
    return white / np.sqrt(np.mean(white**2) + 1e-12)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``audio`` plus ``noise`` scaled to ``snr_db`` below the audio's power."""
    signal_power = float(np.mean(audio**2))
    noise_power = float(np.mean(noise**2)) + 1e-12
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (audio + scale * noise[: len(audio)]).astype(np.float32)


def g711(audio: np.ndarray, codec: str = "mulaw") -> np.ndarray:
    """Encode to 8 bits and decode: G.711's µ-law (µ = 255) or A-law (A = 87.6) companding curve,
    its magnitude quantized to ``G711_STEPS`` steps either side of 0.

    ``audio``: float samples, full scale 1.0 (beyond it clipped, as the codec does); any shape.
    Returns float32 of the same shape, at most 255 distinct values. G.711 itself codes a
    piecewise-linear (8-segment) approximation of these curves; its quantization noise is alike.
    """
    x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    m = np.abs(x)
    if codec == "mulaw":
        y = np.log1p(MULAW_MU * m) / np.log1p(MULAW_MU)
        q = np.round(y * G711_STEPS) / G711_STEPS
        m = np.expm1(q * np.log1p(MULAW_MU)) / MULAW_MU
    elif codec == "alaw":
        k = 1 + np.log(ALAW_A)  # linear below 1/A, logarithmic above
        y = np.where(m < 1 / ALAW_A, ALAW_A * m, 1 + np.log(np.maximum(ALAW_A * m, 1.0))) / k
        q = np.round(y * G711_STEPS) / G711_STEPS
        m = np.where(q < 1 / k, q * k / ALAW_A, np.exp(q * k - 1) / ALAW_A)
    else:
        raise ValueError(f"codec must be one of {TELEPHONE_CODECS}, got {codec!r}")
    return (np.sign(x) * m).astype(np.float32)


def telephone_band(audio: np.ndarray) -> np.ndarray:
    """G.712's band filter on 8 kHz audio: gain 1 over 300-3400 Hz (``TELEPHONE_BAND``), raised-cosine
    edges down to 0 at 200 and 3600 Hz (``TELEPHONE_EDGES``), zero phase (an FFT-domain mask).
    ``audio``: (n,) float at ``TELEPHONE_RATE``; returns (n,) float32."""
    padded = np.pad(np.asarray(audio, dtype=np.float64), TELEPHONE_PAD)
    f = np.fft.rfftfreq(len(padded), 1 / TELEPHONE_RATE)
    (lo_stop, hi_stop), (lo_pass, hi_pass) = TELEPHONE_EDGES, TELEPHONE_BAND
    rise = np.clip((f - lo_stop) / (lo_pass - lo_stop), 0, 1)
    fall = np.clip((hi_stop - f) / (hi_stop - hi_pass), 0, 1)
    mask = (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))
    out = np.fft.irfft(np.fft.rfft(padded) * mask, n=len(padded))
    return out[TELEPHONE_PAD : TELEPHONE_PAD + len(audio)].astype(np.float32)


def telephone_channel(audio: np.ndarray, codec: str = "mulaw") -> np.ndarray:
    """The clip as heard through a telephone line: down to 8 kHz, G.712's band filter (send side),
    8-bit G.711 ``codec`` ("mulaw" or "alaw"), the band filter again (receive side, which keeps the
    quantization noise in the band), back up to 16 kHz. Deterministic.

    ``audio``: (n,) float32 mono at ``SAMPLE_RATE`` (16 kHz), full scale 1.0. Returns (n,) float32
    at 16 kHz: nothing left above 3600 Hz or below 200 Hz, the level kept within the band.
    """
    narrow = soxr.resample(np.asarray(audio, dtype=np.float32), SAMPLE_RATE, TELEPHONE_RATE, quality="HQ")
    line = telephone_band(g711(telephone_band(narrow), codec))
    return _fit(soxr.resample(line, TELEPHONE_RATE, SAMPLE_RATE, quality="HQ"), len(audio)).astype(np.float32)


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


class Augmenter:
    """Applies ``AugmentSettings``' waveform operations with a caller's generator."""

    def __init__(self, settings: AugmentSettings, allow_speed: bool = True) -> None:
        self.s = settings
        self.allow_speed = allow_speed  # packed windows are planned from stored lengths: no speed there
        self._noise_files = self._find_noise(settings.noise_dir)
        self._noise_cache: dict[Path, np.ndarray] = {}

    @staticmethod
    def _find_noise(folder: str | None) -> list[Path]:
        if folder is None:
            return []
        files = sorted(p for p in Path(folder).expanduser().rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise AudioError("no_noise", f"data.augment.noise_dir {folder} holds no audio files")
        return files

    def _noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if not self._noise_files:
            return colored_noise(n, NOISE_COLORS[rng.integers(len(NOISE_COLORS))], rng)
        path = self._noise_files[rng.integers(len(self._noise_files))]
        if path not in self._noise_cache:
            if sum(len(a) for a in self._noise_cache.values()) > NOISE_CACHE_SECONDS * SAMPLE_RATE:
                self._noise_cache.clear()
            self._noise_cache[path] = decode_audio(path)
        noise = self._noise_cache[path]
        if len(noise) < n:
            noise = np.tile(noise, n // len(noise) + 1)
        start = rng.integers(len(noise) - n + 1)
        return noise[start : start + n]

    def draw(self, rng: np.random.Generator, n_samples: int, max_samples: int | None = None) -> list[tuple[str, float]]:
        """Which operations fire for a clip of ``n_samples``, with their values; a speed change that
        would not fit ``max_samples`` is left out."""
        s, ops = self.s, []
        if self.allow_speed and rng.random() < s.speed_prob:
            factor = float(rng.uniform(*s.speed_range))
            if max_samples is None or n_samples / factor <= max_samples:
                ops.append(("speed", factor))
        for name, prob, span in (
            ("pitch", s.pitch_prob, s.pitch_semitones),
            ("gain", s.gain_prob, s.gain_db),
            ("noise", s.noise_prob, s.noise_snr_db),
        ):
            if rng.random() < prob:
                ops.append((name, float(rng.uniform(*span))))
        # drawn only when on, so that runs without it keep the draws they had before it existed
        if s.telephone_prob > 0 and rng.random() < s.telephone_prob:
            codec = s.telephone_codec
            if codec == "random":
                codec = TELEPHONE_CODECS[rng.integers(len(TELEPHONE_CODECS))]
            ops.append(("telephone", float(TELEPHONE_CODECS.index(codec))))  # the value: which codec
        return ops

    def apply(self, audio: np.ndarray, ops: list[tuple[str, float]], rng: np.random.Generator) -> np.ndarray:
        out = np.asarray(audio, dtype=np.float32)
        for name, value in ops:
            if name == "speed":
                out = change_speed(out, value)
            elif name == "pitch":
                out = shift_pitch(out, value)
            elif name == "gain":
                out = apply_gain(out, value)
            elif name == "noise":
                out = add_noise(out, self._noise(len(out), rng), value)
            else:
                out = telephone_channel(out, TELEPHONE_CODECS[int(value)])
        return out

    def __call__(self, audio: np.ndarray, rng: np.random.Generator, max_samples: int | None = None) -> np.ndarray:
        """The augmented clip (the operations drawn, then applied)."""
        return self.apply(audio, self.draw(rng, len(audio), max_samples), rng)


def example_rng(seed: int, epoch: int, clip: int, source: int = 0) -> np.random.Generator:
    """The generator for one clip of one source in one epoch: the same in every run with this seed."""
    return np.random.default_rng([seed, epoch, clip, source])


class ClipAugment:
    """A store clip's log-mel frames, computed from its augmented audio: what a training dataset
    reads instead of the stored frames when ``data.augment`` has waveform operations. A clip that
    draws no operation keeps its stored frames (exact, and free)."""

    def __init__(self, split: Split, augmenter: Augmenter, seed: int, max_samples: int, source: int = 0) -> None:
        self.split, self.augmenter, self.seed, self.max_samples = split, augmenter, seed, max_samples
        self.source = source  # with data.mix, clip i of each source draws its own

    def __call__(self, clip: int, epoch: int) -> tuple[np.ndarray, float]:
        rng = example_rng(self.seed, epoch, clip, self.source)
        ops = self.augmenter.draw(rng, round(float(self.split.duration[clip]) * SAMPLE_RATE), self.max_samples)
        if not ops:
            return np.array(self.split.frames(clip)), float(self.split.pad_value[clip])
        return log_mel(self.augmenter.apply(self.split.audio(clip), ops, rng), self.split.n_mels)
