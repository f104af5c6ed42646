"""Decode any audio file or byte string to mono 16 kHz float32.

soundfile (libsndfile: wav/flac/ogg/mp3) first, soxr to resample, and the ffmpeg
binary as a fallback for everything else. Each failure raises AudioError with a
short machine-readable reason, which prepare counts and reports.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from whisperft.errors import WhisperftError

SAMPLE_RATE = 16_000
FFMPEG_TIMEOUT_S = 600
# The file names taken as audio wherever a folder is searched (transcribe, long recordings, noise files):
# what soundfile reads (wav, flac, ogg/opus, mp3, aiff) and what ffmpeg adds (m4a, aac, webm, mp4, wma).
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".mp4", ".wma", ".aiff"})
# A downmix "cancels" when the average of the channels is more than 20 dB below the loudest channel.
# Identical channels mix at 0 dB, independent ones at -3 dB (two) to -8 dB (six), and one speaking
# channel among six (5.1 dialogue in the centre) at -15.6 dB; out-of-phase copies mix to silence.
CANCELLING_MIX_DB = -20.0

logger = logging.getLogger("whisperft")


class AudioError(WhisperftError):
    """Audio that cannot be used. ``reason`` is a short key such as ``undecodable``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


AudioSource = str | Path | bytes


def _describe(source: AudioSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, bytes) else str(source)


def _check_path(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError("missing_file", f"{path} does not exist") from None
    except OSError as exc:  # symlink loops, permission on a parent, ...
        raise AudioError("unreadable_file", f"{path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise AudioError("missing_file", f"{path} is not a file")
    if st.st_size == 0:
        raise AudioError("empty_audio", f"{path} is a zero-byte file")
    if not os.access(path, os.R_OK):
        raise AudioError("unreadable_file", f"{path}: permission denied")


def _ffmpeg_decode(source: AudioSource, max_duration: float | None) -> np.ndarray:
    """Samples at 16 kHz, shape (n, channels): ffmpeg resamples, and writes 32-bit float AU, whose
    header carries the channel count, so that the downmix happens here as for soundfile."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError("undecodable", f"{_describe(source)}: soundfile cannot read it and ffmpeg is not installed")
    cmd = [exe, "-nostdin", "-v", "error", "-i", "pipe:0" if isinstance(source, bytes) else str(source)]
    if max_duration is not None:
        cmd += ["-t", str(max_duration + 1)]
    cmd += ["-vn", "-f", "au", "-c:a", "pcm_f32be", "-ar", str(SAMPLE_RATE), "pipe:1"]
    try:
        proc = subprocess.run(
            cmd,
            input=source if isinstance(source, bytes) else None,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AudioError("undecodable", f"{_describe(source)}: ffmpeg timed out") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        last = msg[-1] if msg else "ffmpeg failed"
        raise AudioError("undecodable", last if str(source) in last else f"{_describe(source)}: {last}")
    try:
        return sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)[0]
    except (sf.LibsndfileError, RuntimeError, ValueError):  # ffmpeg found no audio stream
        return np.zeros((0, 1), np.float32)


def downmix(data: np.ndarray, source: AudioSource | None = None) -> np.ndarray:
    """Mono from samples of shape (n, channels): their average, or the loudest channel (by RMS) when the
    average cancels, i.e. is more than ``CANCELLING_MIX_DB`` below it (channels out of phase), with a
    warning naming ``source``. Returns shape (n,)."""
    if data.shape[1] == 1:
        return data[:, 0]
    mix = data.mean(axis=1)
    rms = np.sqrt([float(np.dot(data[:, c], data[:, c])) / len(data) for c in range(data.shape[1])])
    loudest = int(np.argmax(rms))
    mix_rms = float(np.sqrt(np.dot(mix, mix) / len(mix)))
    if rms[loudest] > 0 and mix_rms < rms[loudest] * 10 ** (CANCELLING_MIX_DB / 20):
        level = f"{20 * np.log10(mix_rms / rms[loudest]):.0f} dB below the loudest" if mix_rms > 0 else "silent"
        logger.warning(
            "%s: the %d channels cancel when mixed (%s): using channel %d alone",
            _describe(source) if source is not None else "audio",
            data.shape[1],
            level,
            loudest + 1,
        )
        return np.ascontiguousarray(data[:, loudest])
    return mix


def decode_audio(source: AudioSource | np.ndarray, max_duration: float | None = None) -> np.ndarray:
    """Return mono float32 samples at 16 kHz, shape (n,); channels are mixed by ``downmix``.

    ``max_duration`` (seconds) rejects long files from their header before decoding
    them, so a 3-hour file in a training manifest costs nothing. An array is audio already decoded
    (16 kHz mono, as a clip cut from a long recording): it is only checked.
    """
    if isinstance(source, np.ndarray):
        return _checked(np.ascontiguousarray(source, dtype=np.float32), "<cut audio>", max_duration)
    if isinstance(source, bytes):
        if not source:
            raise AudioError("empty_audio", "zero bytes of audio")
        handle: io.BytesIO | Path = io.BytesIO(source)
    else:
        handle = Path(source)
        _check_path(handle)
    try:
        with sf.SoundFile(handle) as f:
            rate, frames = f.samplerate, f.frames
            if max_duration is not None and frames > 0 and frames / rate > max_duration:
                raise AudioError("too_long", f"{_describe(source)}: {frames / rate:.1f} s > {max_duration:g} s")
            data = f.read(dtype="float32", always_2d=True)
        audio = downmix(data, source)
        if rate != SAMPLE_RATE and audio.size:
            audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        audio = downmix(_ffmpeg_decode(source, max_duration), source)
    except MemoryError:
        raise AudioError("undecodable", f"{_describe(source)}: too large to decode") from None
    return _checked(np.ascontiguousarray(audio, dtype=np.float32), _describe(source), max_duration)


def _checked(audio: np.ndarray, name: str, max_duration: float | None) -> np.ndarray:
    if audio.size == 0:
        raise AudioError("empty_audio", f"{name}: no samples")
    if not np.isfinite(audio).all():
        raise AudioError("non_finite_audio", f"{name}: NaN or infinite samples")
    if max_duration is not None and audio.size / SAMPLE_RATE > max_duration:
        raise AudioError("too_long", f"{name}: {audio.size / SAMPLE_RATE:.1f} s > {max_duration:g} s")
    return audio


def is_silent(audio: np.ndarray, threshold: float = 1e-4) -> bool:
    """True when the peak amplitude is below ``threshold`` (digital silence)."""
    return audio.size == 0 or float(np.abs(audio).max()) < threshold
