"""Test, demo and benchmark audio from espeak-ng, sox and ffmpeg: re-encoding, Common Voice style clips in
varied voices with reverb and noise, and long recordings with their true timings.

espeak-ng speaks (``whisperft.synth.speak``); sox adds reverb, noise and music; ffmpeg encodes like
Common Voice (48 kHz mp3, mono or stereo). Not part of the package: tests, demo and benchmarks import it.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.synth import speak


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


def render_recording(items: list[tuple[str, str | float, float]], out: Path, voice: str = "sv",
                     speed: int = 160) -> list[dict[str, object]]:  # fmt: skip
    """A long recording, as one reader makes it: each item is ("say", text, pause after it in seconds),
    ("file", a recording to put in, pause after) or ("music", seconds, pause after), plucked guitar chords
    from sox. Encoded by ffmpeg from its suffix (a LibriVox chapter is a 44.1 kHz mp3).

    Returns, per item, where its sound really is: {"kind", "text", "start", "end"} in seconds, silence
    trimmed (samples above -50 dBFS), which is what an aligner's boundaries are scored on.
    """
    pieces, truth, pos = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for k, (kind, what, pause) in enumerate(items):
            wav = Path(tmp) / f"{k}.wav"
            if kind == "say":
                speak(str(what), wav, voice, speed)
            elif kind == "music":
                notes = ["pluck", "C3", "pluck", "E3", "pluck", "G3", "pluck", "C4"]
                subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "synth", f"{float(what):g}", *notes,
                                "tremolo", "2", "40", "vol", "0.5"], check=True, capture_output=True)  # fmt: skip
            sound = decode_audio(Path(str(what)) if kind == "file" else wav)
            loud = np.flatnonzero(np.abs(sound) > 10 ** (-50 / 20))
            a, b = (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, 0)
            truth.append({"kind": kind, "text": str(what), "start": round((pos + a) / SAMPLE_RATE, 3),
                          "end": round((pos + b) / SAMPLE_RATE, 3)})  # fmt: skip
            gap = int(pause * SAMPLE_RATE)
            pieces += [sound, np.zeros(gap, dtype=np.float32)]
            pos += len(sound) + gap
        joined = Path(tmp) / "joined.wav"
        sf.write(joined, np.concatenate(pieces), SAMPLE_RATE)
        convert(joined, Path(out), rate=44100)
    return truth


def long_recording(sentences: list[str], out: Path, seconds: float, voice: str = "en-us", seed: int = 3) -> str:
    """One long recording read without pauses (a talk, an audiobook read fast): sentences drawn at random
    from ``sentences``, each at a random espeak-ng speed of 140-175 words per minute, until ``seconds``
    of speech; written as a 16 kHz mono wav to ``out``. Returns its transcript, the sentences joined."""
    rng = random.Random(seed)
    said: list[str] = []
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        while total < seconds:
            text = rng.choice(sentences)
            part = speak(text, Path(tmp) / f"{len(parts):04d}.wav", voice, speed=rng.randint(140, 175))
            total += sf.info(part).duration
            said.append(text)
            parts.append(str(part))
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", *parts, str(out), "rate", "16000", "channels", "1"], check=True, capture_output=True)
    return " ".join(said)
