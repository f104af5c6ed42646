"""Speech synthesis with espeak-ng, and re-encoding with ffmpeg/sox: test, demo, benchmark and parity audio.

espeak-ng speaks Swedish, English and many more languages offline; sox adds reverb and
noise; ffmpeg encodes like Common Voice (48 kHz mp3, mono or stereo).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from whisperft.errors import WhisperftError


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, out: Path, voice: str = "sv", speed: int = 160, pitch: int = 50) -> Path:
    """Synthesize ``text`` to a wav file with espeak-ng."""
    if not have_espeak():
        raise WhisperftError("espeak-ng is not installed (apt-get install espeak-ng)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text],
        check=True,
        capture_output=True,
    )
    return out


def convert(src: Path, dst: Path, rate: int = 48000, channels: int = 1, extra: list[str] | None = None) -> Path:
    """Re-encode audio with ffmpeg (format from dst's suffix)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ar", str(rate), "-ac", str(channels)]
    subprocess.run(cmd + (extra or []) + [str(dst)], check=True, capture_output=True)
    return dst


VOICE_VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+klatt"]


def render_clip(text: str, out: Path, rng: random.Random, lang: str = "sv") -> dict[str, object]:
    """Speak ``text`` with a random espeak-ng voice variant, speed and pitch, maybe add reverb and noise,
    and encode it like Common Voice (48 kHz mp3, mono or stereo)."""
    voice = lang + rng.choice(VOICE_VARIANTS)
    speed = rng.randint(125, 185)
    pitch = rng.randint(25, 75)
    effect = rng.choice(["clean", "clean", "reverb", "noise", "reverb+noise"])
    channels = rng.choice([1, 2])
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
                       check=True, capture_output=True)  # fmt: skip
        src = wav
        if "reverb" in effect:
            rev = Path(tmp) / "r.wav"
            subprocess.run(["sox", str(src), str(rev), "reverb", str(rng.randint(20, 60))], check=True,
                           capture_output=True)  # fmt: skip
            src = rev
        if "noise" in effect:
            noisy = Path(tmp) / "n.wav"
            vol = rng.uniform(0.005, 0.03)
            cmd = ["sox", str(src), "-p", "synth", rng.choice(["whitenoise", "pinknoise", "brownnoise"]), "vol",
                   f"{vol:.3f}"]  # fmt: skip
            noise = subprocess.run(cmd, check=True, capture_output=True).stdout
            subprocess.run(["sox", "-m", str(src), "-", str(noisy)], input=noise, check=True, capture_output=True)
            src = noisy
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ar", "48000", "-ac",
                        str(channels), "-b:a", "64k", str(out)], check=True, capture_output=True)  # fmt: skip
    return {"voice": voice, "speed": speed, "pitch": pitch, "effect": effect}
