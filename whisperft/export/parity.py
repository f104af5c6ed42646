"""Export's parity check: the exported model, run by its own client, and the HF model transcribe the same
clips alike; an export that does not is never written.

Clips come from the user (``--verify-audio``) or are spoken by espeak-ng in the model's language.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from whisperft.audio import decode_audio
from whisperft.errors import WhisperftError
from whisperft.features import HOP_LENGTH, log_mel_batch, pad_features
from whisperft.languages import decode_language
from whisperft.metrics import score
from whisperft.models.ct2_decode import MAX_LENGTH, CT2Decoder
from whisperft.models.decode import generate_ids
from whisperft.models.registry import load_model, load_processor
from whisperft.models.whisper import context_frames, decoder_prefix, is_multilingual, own_language
from whisperft.synth import have_espeak, speak
from whisperft.text import normalize_text

PARITY_TOLERANCE = {"float32": 0.10, "float16": 0.10, "bfloat16": 0.10, "f16": 0.10}
# normalized WER; int8, q8_0, q5_0: 0.20
INT8_TOLERANCE = 0.20
PARITY_SENTENCES = {
    "en": ["The weather is nice today.", "Please call me back tomorrow morning.", "We met at the station at nine."],
    "sv": ["Det regnar i Stockholm idag.", "Tåget går klockan nio.", "Vi ses på fredag efter jobbet."],
}


@dataclass
class Parity:
    wer: float  # normalized WER of the export's outputs against the HF outputs
    tolerance: float
    pairs: list[tuple[str, str]]  # (HF text, export's text) per clip


def tolerance_for(quantization: str) -> float:
    """Normalized WER allowed between HF and export: 10% for float types, 20% for 8-bit and smaller ones."""
    return PARITY_TOLERANCE.get(quantization.lower(), INT8_TOLERANCE)


def parity_clips(language: str, n: int = 3) -> list[np.ndarray]:
    """Speech for the parity check, synthesized with espeak-ng in the model's language."""
    if not have_espeak():
        raise WhisperftError("the parity check needs audio: pass --verify-audio FILES, or install espeak-ng")
    sentences = PARITY_SENTENCES.get(language, PARITY_SENTENCES["en"])[:n]
    voice = language if language in PARITY_SENTENCES else "en"
    with tempfile.TemporaryDirectory() as tmp:
        return [decode_audio(speak(s, Path(tmp) / f"{i}.wav", voice=voice)) for i, s in enumerate(sentences)]


def comparable_texts(hf: list[int], ct: list[int], tokenizer: Any) -> tuple[str, str]:
    """The two decodes as text; when CTranslate2 hit its length cap, both cut to its length.

    ctranslate2 4.8 stops a decode at half its ``max_length`` (448 gives 224 tokens), while transformers
    runs to the decoder's end, so a model that never stops (an untrained one) would fail parity on length
    alone. Every Whisper special token comes after <|endoftext|>, so text tokens are those below it.
    """
    eot = int(tokenizer.eos_token_id)
    a, b = [t for t in hf if t < eot], [t for t in ct if t < eot]
    if len(ct) >= MAX_LENGTH // 2:
        a = a[: len(b)]
    return tokenizer.decode(a).strip(), tokenizer.decode(b).strip()


def prompt_token(model: Any, language: str) -> str:
    """The language code a client prompts ``model`` with for ``language`` (a fine-tune's proxy, if it has one):
    the language decided once for the parity check, and given to both decoders."""
    return decode_language(language, own_language(model), is_multilingual(model.config)).token or "en"


def check_parity(
    model_path: str, ct2_dir: Path, tokenizer: Any, clips: list[np.ndarray], language: str, quantization: str
) -> Parity:
    """Transcribe ``clips`` with the HF model and with the CTranslate2 folder ``ct2_dir``; raise WhisperftError
    when they differ by more than the tolerance."""
    model = load_model(model_path)
    cfg = model.config
    feats = pad_features(log_mel_batch(clips, int(cfg.num_mel_bins)))
    token = prompt_token(model, language)
    hf = generate_ids(model, feats, token if is_multilingual(cfg) else None).tolist()
    prompt = [cfg.decoder_start_token_id, *decoder_prefix(tokenizer, cfg, token, "transcribe")]
    ct = CT2Decoder(ct2_dir).generate_ids(feats.numpy(), prompt)
    pairs = [comparable_texts(a, b, tokenizer) for a, b in zip(hf, ct, strict=True)]
    return judge(pairs, language, quantization, "CTranslate2")


def check_client(
    model_path: str,
    clips: list[np.ndarray],
    language: str,
    quantization: str,
    client: str,
    transcribe: Callable[[list[np.ndarray], str], list[str]],
    max_new_tokens: int,
) -> Parity:
    """Transcribe ``clips`` (16 kHz float32; each cut to the model's window) with the HF model and with
    ``transcribe(clips, token)``, the export run in its own client prompted with language code ``token``; raise
    WhisperftError when they differ by more than the tolerance.

    ``max_new_tokens``: where the client stops a decode that never ends (openai-whisper: 224 tokens, half its
    448 positions; whisper.cpp: 220), so a model that never stops (an untrained one) is compared on as many
    tokens from both.
    """
    model = load_model(model_path)
    cfg = model.config
    tokenizer = load_processor(model_path).tokenizer
    clips = [np.asarray(c, dtype=np.float32)[: context_frames(cfg) * HOP_LENGTH] for c in clips]  # one window each
    feats = pad_features(log_mel_batch(clips, int(cfg.num_mel_bins)), context_frames(cfg))
    token = prompt_token(model, language)
    ids = generate_ids(model, feats, token if is_multilingual(cfg) else None, max_new_tokens=max_new_tokens)
    eot = int(tokenizer.eos_token_id)
    hf = [tokenizer.decode([t for t in row if t < eot]).strip() for row in ids.tolist()]
    theirs = transcribe(clips, token)
    return judge(list(zip(hf, [t.strip() for t in theirs], strict=True)), language, quantization, client)


def judge(pairs: list[tuple[str, str]], language: str, quantization: str, client: str) -> Parity:
    """Parity of (HF text, export's text) pairs; raises WhisperftError past ``tolerance_for(quantization)``."""
    hf, ct = [a for a, _ in pairs], [b for _, b in pairs]
    metrics, _ = score([str(i) for i in range(len(hf))], hf, ct, language)
    wer = metrics["wer_normalized"]
    if wer is None:  # the HF model said no word at all (a rate over nothing): equal only if the export did too
        wer = 0.0 if not any(normalize_text(b) for b in ct) else 1.0
    result = Parity(float(wer), tolerance_for(quantization), pairs)
    if result.wer > result.tolerance:
        detail = "; ".join(f"{a!r} vs {b!r}" for a, b in pairs if a != b)[:400]
        raise WhisperftError(
            f"export parity check failed: {client} output differs from the HF model by "
            f"{100 * result.wer:.1f}% WER (tolerance {100 * result.tolerance:.0f}%): {detail}"
        )
    return result
