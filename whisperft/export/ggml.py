"""``whisperft export --to ggml``: an HF Whisper folder -> one whisper.cpp model file (``ggml-model.bin``).

The file is whisper.cpp's legacy GGML format, the one ``whisper_init_from_file`` loads and its
``models/convert-pt-to-ggml.py`` writes (little-endian throughout):

- magic ``0x67676d6c``, then eleven int32 hyper-parameters: n_vocab, n_audio_ctx, n_audio_state,
  n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
  (1: f16; quantized: ggml's ``GGML_FTYPE_MOSTLY_*`` + 1000 * ``GGML_QNT_VERSION`` 2, as its ``quantize``);
- the mel filter bank: int32 n_mels, int32 n_fft / 2 + 1 = 201, float32 [n_mels][201];
- the vocabulary: int32 count, then per token below <|endoftext|> int32 length and its bytes
  (whisper.cpp numbers the special tokens itself from n_vocab);
- per tensor, under openai-whisper's names: int32 n_dims, int32 name length, int32 ggml type,
  n_dims int32 sizes innermost first, the name, the data.

whisper.cpp's converter for HF fine-tunes (``convert-h5-to-ggml.py``) needs clones of whisper.cpp and
openai/whisper and writes only f16/f32; its quantizer is a C++ program that pywhispercpp does not ship.
So the file is written here: the tensors come from ``openai.openai_checkpoint`` (the same key table),
and quantized blocks from ``gguf.quants`` (llama.cpp's own Python package, byte-identical to ggml's
reference quantizer). The result is checked by loading it in whisper.cpp (pywhispercpp) in a child
process, because whisper.cpp aborts the process on a malformed file, and transcribing the parity clips.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from whisperft.errors import UsageError, WhisperftError
from whisperft.export.openai import openai_checkpoint
from whisperft.export.parity import check_client
from whisperft.export.standard import ExportResult, parity_code, stock_whisper
from whisperft.export.targets import check_request
from whisperft.extras import missing_extra
from whisperft.io import staged_dir
from whisperft.models.registry import load_processor

MODEL_FILE = "ggml-model.bin"
MAGIC = 0x67676D6C  # "ggml"
MAX_NEW_TOKENS = 220  # whisper.cpp ends a decode at n_text_ctx / 2 - 4 tokens (whisper_full_with_state)
QNT_VERSION_FACTOR, QNT_VERSION = 1000, 2  # ggml.h: a quantized file's ftype carries the block format's version
# quantization -> (header ftype, ggml tensor type of the quantized 2-D weights, gguf's name of that type)
FILE_TYPES = {"f16": (1, 1, "F16"), "q8_0": (7, 8, "Q8_0"), "q5_0": (8, 6, "Q5_0")}
F32, F16 = 0, 1  # ggml tensor types
# Kept in float32 as whisper.cpp's converter and quantizer keep them (its quantize's to_skip list).
KEEP_F32 = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding", "decoder.positional_embedding")
WHISPER_VOCABS = (51864, 51865, 51866)  # whisper.cpp derives its special tokens from these vocabulary sizes


def export_ggml(
    model_path: str,
    out: str | Path,
    quantization: str = "f16",
    verify_audio: list[np.ndarray] | None = None,
    language: str | None = None,
) -> ExportResult:
    """Write ``out/ggml-model.bin`` for whisper.cpp, then check it transcribes ``verify_audio`` as the HF model.

    ``quantization``: f16 (whisper.cpp's release format), q8_0 or q5_0 (ggml's 8- and 5-bit blocks of 32
    weights). Raises UsageError for another value or a model whisper.cpp cannot hold (a vocabulary that is
    not Whisper's), WhisperftError when whisper.cpp cannot load the file or the parity check fails (nothing
    is written then).
    """
    quantization, lang, out = check_request("ggml", quantization), parity_code(language), Path(out)
    with tempfile.TemporaryDirectory(prefix="whisperft-export-") as work:
        model_path = stock_whisper(model_path, Path(work), "whisper.cpp")
        with staged_dir(out) as tmp:
            with open(tmp / MODEL_FILE, "wb") as f:
                write_ggml(model_path, f, quantization)
            parity = None
            if verify_audio:
                parity = check_client(
                    model_path,
                    verify_audio,
                    lang,
                    quantization,
                    "whisper.cpp",
                    lambda clips, token: transcribe_ggml(tmp / MODEL_FILE, clips, token, shown=out / MODEL_FILE),
                    MAX_NEW_TOKENS,
                )
            else:
                check_loads(tmp / MODEL_FILE, out / MODEL_FILE)
    return ExportResult.checked(out, quantization, parity)


def write_ggml(model_path: str, f: BinaryIO, quantization: str) -> None:
    """Write a saved HF Whisper with a 30 s window (``standard.stock_whisper``) to ``f`` in whisper.cpp's format."""
    checkpoint = openai_checkpoint(model_path, torch.float32)
    dims = checkpoint["dims"]
    if dims["n_vocab"] not in WHISPER_VOCABS:
        raise UsageError(
            f"{model_path}: whisper.cpp holds only Whisper's vocabularies ({WHISPER_VOCABS}), "
            f"this model has {dims['n_vocab']} tokens"
        )
    ftype, qtype, qname = FILE_TYPES[quantization]
    if ftype != 1:
        ftype += QNT_VERSION_FACTOR * QNT_VERSION
    keys = (
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
    )
    f.write(struct.pack("<12i", MAGIC, *(int(dims[k]) for k in keys), ftype))
    processor = load_processor(model_path)
    filters = np.asarray(processor.feature_extractor.mel_filters, dtype=np.float32).T  # (201, n_mels) -> (n_mels, 201)
    f.write(struct.pack("<2i", *filters.shape))
    f.write(np.ascontiguousarray(filters).astype("<f4").tobytes())
    tokens = token_bytes(processor.tokenizer)
    f.write(struct.pack("<i", len(tokens)))
    for token in tokens:
        f.write(struct.pack("<i", len(token)) + token)
    for name, tensor in checkpoint["model_state_dict"].items():
        _write_tensor(f, name, tensor.numpy(), qtype, qname)


def token_bytes(tokenizer: Any) -> list[bytes]:
    """The bytes of every token below <|endoftext|>, in id order (byte-level BPE strings decoded with GPT-2's
    byte-to-unicode table, so a token holding part of a UTF-8 character keeps its raw bytes)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    decoder = {ch: b for b, ch in bytes_to_unicode().items()}
    vocab = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["vocab"]
    by_id = {int(i): t for t, i in vocab.items()}
    eot = int(tokenizer.eos_token_id)
    missing = [i for i in range(eot) if i not in by_id]
    if missing:
        raise UsageError(f"the tokenizer has no token {missing[0]} below <|endoftext|> ({eot}): not Whisper's")
    return [bytes(decoder[ch] for ch in by_id[i]) for i in range(eot)]


def _write_tensor(f: BinaryIO, name: str, data: np.ndarray, qtype: int, qname: str) -> None:
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        data = data.reshape(-1, 1)  # whisper.cpp adds them as [1, d] tensors to the conv output
    if data.ndim < 2 or name in KEEP_F32:
        ttype, payload = F32, data.astype("<f4").tobytes()
    elif data.ndim > 2 or qtype == F16:  # conv kernels stay f16, as whisper.cpp's quantizer leaves them
        ttype, payload = F16, data.astype("<f2").tobytes()
    else:
        from gguf import GGMLQuantizationType
        from gguf.quants import quantize  # deferred: an optional extra (gguf)

        ttype, payload = qtype, quantize(data.astype(np.float32), getattr(GGMLQuantizationType, qname)).tobytes()
    encoded = name.encode("utf-8")
    f.write(struct.pack(f"<3i{data.ndim}i", data.ndim, len(encoded), ttype, *reversed(data.shape)))
    f.write(encoded)
    f.write(payload)


def _run_client(
    model_file: Path, clips: list[np.ndarray], token: str | None, audio_ctx: int = 0, shown: Path | None = None
) -> list[str]:
    """Load ``model_file`` in whisper.cpp in a child process and transcribe ``clips``; errors name ``shown``
    (default: ``model_file``) and quote whisper.cpp's last complaint from its log."""
    with tempfile.TemporaryDirectory(prefix="whisperft-ggml-") as tmp:
        audio = Path(tmp) / "clips.npz"
        np.savez(audio, *[np.asarray(c, dtype=np.float32) for c in clips])
        cmd = [sys.executable, "-m", "whisperft.export.ggml", str(model_file), str(audio), token or "", str(audio_ctx)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = done.stdout.strip().splitlines()
    if done.returncode == 0 and out:
        return json.loads(out[-1])
    why = f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
    log = done.stderr.strip().splitlines()
    complaints = [line.strip() for line in log if re.search(r"error|fail|invalid|bad|mismatch|unknown", line, re.I)]
    detail = (complaints or log[-1:] or [why])[-1]
    raise WhisperftError(f"whisper.cpp could not load or run {shown or model_file} ({why}): {detail}")


def check_loads(model_file: Path, shown: Path | None = None) -> None:
    """Raise WhisperftError unless whisper.cpp (pywhispercpp) loads ``model_file`` and runs it on 1 s of silence
    (pywhispercpp does not report a failed load; running a model it could not load ends the process)."""
    _run_client(model_file, [np.zeros(16_000, dtype=np.float32)], None, shown=shown)


def transcribe_ggml(
    model_file: Path, clips: list[np.ndarray], token: str, audio_ctx: int = 0, shown: Path | None = None
) -> list[str]:
    """Texts of 16 kHz clips by whisper.cpp (pywhispercpp), greedy, without timestamps or earlier context, in
    a child process: whisper.cpp aborts the process on a malformed file. ``audio_ctx``: as ``client_texts``."""
    return _run_client(model_file, clips, token, audio_ctx, shown)


def client_texts(model_file: str, clips: list[np.ndarray], token: str | None, audio_ctx: int = 0) -> list[str]:
    """whisper.cpp's transcripts in this process (``transcribe_ggml``'s child). ``audio_ctx``: encoder positions
    to run (0: the file's 1500; a model trained on a short window takes 50 per second of it)."""
    try:
        from pywhispercpp.model import Model  # deferred: an optional extra (pywhispercpp)
    except ImportError:
        raise missing_extra("the ggml parity check", ["pywhispercpp"]) from None
    model = Model(
        model_file,
        redirect_whispercpp_logs_to=False,
        n_threads=max(1, min(4, os.cpu_count() or 1)),
        print_progress=False,
        print_realtime=False,
        greedy={"best_of": 1},
    )
    texts = []
    for clip in clips:
        segments = model.transcribe(
            np.asarray(clip, dtype=np.float32),
            language=token or "en",
            no_timestamps=True,
            no_context=True,
            temperature=0.0,
            temperature_inc=0.0,
            single_segment=True,
            audio_ctx=audio_ctx,
        )
        texts.append("".join(s.text for s in segments))
    return texts


if __name__ == "__main__":  # the child process of _run_client: MODEL_FILE CLIPS.npz TOKEN AUDIO_CTX
    with np.load(sys.argv[2]) as archive:
        arrays = [archive[k] for k in sorted(archive.files, key=lambda k: int(k.split("_")[1]))]
    print(json.dumps(client_texts(sys.argv[1], arrays, sys.argv[3] or None, int(sys.argv[4]))))
