"""CTranslate2 (faster-whisper) Whisper models: read `model.bin`, convert it into a Hugging Face folder.

``model.bin`` layout (little endian): uint32 binary version, a string spec name,
uint32 spec revision, uint32 tensor count, then per tensor: string name, uint8
rank, uint32 dims, uint8 dtype id, uint32 byte count, raw bytes; then uint32 alias
count and (alias, target) string pairs. A string is a uint16 length (including a
trailing NUL) followed by UTF-8 bytes. Self-attention QKV and cross-attention KV
are fused; Whisper's key projections have no bias. The architecture is derived
from the tensors, so any Whisper size converts.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import WhisperConfig, WhisperForConditionalGeneration

from whisperft.errors import WhisperftError
from whisperft.features import TIME_PRECISION
from whisperft.io import mark_complete, staged_dir
from whisperft.languages import ModelLanguage
from whisperft.models.whisper import build_generation_config, new_processor, set_language

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
SUPPORTED_VERSIONS = (5, 6)


class CT2FormatError(WhisperftError):
    """A model.bin that cannot be read."""


@dataclass
class CT2Model:
    spec: str
    revision: int
    tensors: dict[str, np.ndarray]
    aliases: dict[str, str]

    def get(self, name: str) -> np.ndarray:
        return self.tensors[self.aliases.get(name, name)]


class _Reader:
    def __init__(self, buf: Any, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int, what: str) -> np.ndarray:
        if self.pos + n > len(self.buf):
            raise CT2FormatError(f"{self.path} is truncated: {what} needs {n} bytes at offset {self.pos}")
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what).tobytes())[0]

    def string(self, what: str) -> str:
        n = self.unpack("H", what)
        raw = self.take(n, what).tobytes()
        try:
            return raw.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            raise CT2FormatError(f"{self.path}: {what} is not valid UTF-8 at offset {self.pos - n}") from None


def read_model_bin(path: str | Path) -> CT2Model:
    """Read every tensor of a CTranslate2 model.bin (memory-mapped, copied per tensor)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CT2FormatError(f"cannot open {path}: {exc.strerror or exc}") from None
    if size < 12:
        raise CT2FormatError(f"{path} is truncated ({size} bytes): not a CTranslate2 model")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    r = _Reader(buf, path)
    version = r.unpack("I", "version")
    if version not in SUPPORTED_VERSIONS:
        raise CT2FormatError(
            f"{path} is not a CTranslate2 model.bin (binary version {version}, expected "
            f"{' or '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    spec = r.string("spec name")
    revision = r.unpack("I", "revision")
    count = r.unpack("I", "tensor count")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = r.string("tensor name")
        rank = r.unpack("B", f"rank of {name}")
        dims = [r.unpack("I", f"shape of {name}") for _ in range(rank)]
        dtype_id = r.unpack("B", f"dtype of {name}")
        if dtype_id not in DTYPES:
            raise CT2FormatError(f"{path}: tensor {name} has unknown dtype id {dtype_id}")
        nbytes = r.unpack("I", f"size of {name}")
        raw = r.take(nbytes, f"data of {name}")
        dtype = DTYPES[dtype_id]
        if dtype == "bfloat16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            if nbytes % np.dtype(dtype).itemsize:
                raise CT2FormatError(f"{path}: tensor {name} has {nbytes} bytes, not a multiple of its dtype")
            arr = np.array(raw.view(dtype))
        expected = int(np.prod(dims)) if dims else 1
        if arr.size != expected:
            raise CT2FormatError(f"{path}: tensor {name} has {arr.size} values for shape {dims}")
        tensors[name] = arr.reshape(dims) if dims else arr.reshape(())
    aliases = {}
    n_alias = r.unpack("I", "alias count") if r.pos < len(buf) else 0
    for _ in range(n_alias):
        alias = r.string("alias")
        aliases[alias] = r.string("alias target")
    del buf
    return CT2Model(spec, revision, tensors, aliases)


def _float(model: CT2Model, name: str) -> torch.Tensor:
    """A float32 tensor; int8/int16 weights are dequantized with their ``*_scale``."""
    value = model.get(name)
    if value.dtype in (np.int8, np.int16):
        scale_name = name + "_scale" if name + "_scale" in model.tensors else name.rsplit("/", 1)[0] + "/weight_scale"
        if scale_name not in model.tensors:
            raise CT2FormatError(f"quantized tensor {name} has no scale")
        scale = model.tensors[scale_name].astype(np.float32)
        if scale.ndim:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        out = value.astype(np.float32) / scale
        return torch.from_numpy(out)
    return torch.from_numpy(value.astype(np.float32))


def _count_layers(names: list[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)/")
    layers = {int(m.group(1)) for n in names if (m := pattern.match(n))}
    return max(layers) + 1 if layers else 0


def hf_state_dict(model: CT2Model) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Map CTranslate2 Whisper tensors onto WhisperForConditionalGeneration names, and derive its config."""
    if model.spec != "WhisperSpec":
        raise CT2FormatError(f"model spec is {model.spec!r}, not a Whisper model (WhisperSpec)")
    names = list(model.tensors)
    required = ("encoder/conv1/weight", "decoder/embeddings/weight", "encoder/position_encodings/encodings")
    for req in required:
        if req not in model.tensors:
            raise CT2FormatError(f"model.bin has no {req}: not a Whisper model")
    sd: dict[str, torch.Tensor] = {}
    emb = _float(model, "decoder/embeddings/weight")
    vocab, d_model = emb.shape
    conv1 = _float(model, "encoder/conv1/weight")
    enc_layers = _count_layers(names, "encoder/layer_")
    dec_layers = _count_layers(names, "decoder/layer_")
    ffn = model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]
    dec_ffn = model.get("decoder/layer_0/ffn/linear_0/weight").shape[0]

    def put(hf: str, ct: str) -> None:
        sd[hf + ".weight"] = _float(model, ct + "/weight")
        if ct + "/bias" in model.tensors:
            sd[hf + ".bias"] = _float(model, ct + "/bias")

    def norm(hf: str, ct: str) -> None:
        sd[hf + ".weight"] = _float(model, ct + "/gamma")
        sd[hf + ".bias"] = _float(model, ct + "/beta")

    def split_fused(hf_prefix: str, ct: str, parts: tuple[str, ...]) -> None:
        w = _float(model, ct + "/weight")
        b = _float(model, ct + "/bias")
        for i, part in enumerate(parts):
            sd[f"{hf_prefix}.{part}.weight"] = w[i * d_model : (i + 1) * d_model].clone()
            if part != "k_proj":  # Whisper's key projections have no bias
                sd[f"{hf_prefix}.{part}.bias"] = b[i * d_model : (i + 1) * d_model].clone()

    def layer(p: str, c: str) -> None:
        """What encoder and decoder layers share: self-attention and the feed-forward block."""
        norm(f"{p}.self_attn_layer_norm", f"{c}/self_attention/layer_norm")
        split_fused(f"{p}.self_attn", f"{c}/self_attention/linear_0", ("q_proj", "k_proj", "v_proj"))
        put(f"{p}.self_attn.out_proj", f"{c}/self_attention/linear_1")
        norm(f"{p}.final_layer_norm", f"{c}/ffn/layer_norm")
        put(f"{p}.fc1", f"{c}/ffn/linear_0")
        put(f"{p}.fc2", f"{c}/ffn/linear_1")

    put("model.encoder.conv1", "encoder/conv1")
    put("model.encoder.conv2", "encoder/conv2")
    sd["model.encoder.embed_positions.weight"] = _float(model, "encoder/position_encodings/encodings")
    for i in range(enc_layers):
        layer(f"model.encoder.layers.{i}", f"encoder/layer_{i}")
    norm("model.encoder.layer_norm", "encoder/layer_norm")

    sd["model.decoder.embed_tokens.weight"] = emb
    sd["model.decoder.embed_positions.weight"] = _float(model, "decoder/position_encodings/encodings")
    for i in range(dec_layers):
        p, c = f"model.decoder.layers.{i}", f"decoder/layer_{i}"
        layer(p, c)
        norm(f"{p}.encoder_attn_layer_norm", f"{c}/attention/layer_norm")
        put(f"{p}.encoder_attn.q_proj", f"{c}/attention/linear_0")
        split_fused(f"{p}.encoder_attn", f"{c}/attention/linear_1", ("k_proj", "v_proj"))
        put(f"{p}.encoder_attn.out_proj", f"{c}/attention/linear_2")
    norm("model.decoder.layer_norm", "decoder/layer_norm")

    heads = int(model.tensors["encoder/num_heads"]) if "encoder/num_heads" in model.tensors else d_model // 64
    dec_heads = int(model.tensors["decoder/num_heads"]) if "decoder/num_heads" in model.tensors else heads
    config = {
        "vocab_size": int(vocab),
        "num_mel_bins": int(conv1.shape[1]),
        "d_model": int(d_model),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": dec_heads,
        "encoder_ffn_dim": int(ffn),
        "decoder_ffn_dim": int(dec_ffn),
        "max_source_positions": int(model.get("encoder/position_encodings/encodings").shape[0]),
        "max_target_positions": int(model.get("decoder/position_encodings/encodings").shape[0]),
    }
    return sd, config


def import_ct2(ct2_dir: str | Path, out_dir: str | Path, model_bin: Path | None = None) -> Path:
    """Convert a CTranslate2 Whisper folder into a complete HF model folder at ``out_dir`` (atomically)."""
    ct2_dir = Path(ct2_dir)
    bin_path = model_bin or ct2_dir / "model.bin"
    tok_path = ct2_dir / "tokenizer.json"
    if not bin_path.is_file():
        raise WhisperftError(f"{ct2_dir} has no model.bin: not a CTranslate2 model folder")
    if not tok_path.is_file():
        raise WhisperftError(f"{ct2_dir} has no tokenizer.json; CTranslate2 Whisper folders ship one beside model.bin")
    ct2_cfg = json.loads((ct2_dir / "config.json").read_text()) if (ct2_dir / "config.json").is_file() else {}
    sd, arch = hf_state_dict(read_model_bin(bin_path))
    processor = new_processor(tok_path, arch["num_mel_bins"])
    tok = processor.tokenizer
    _add_timestamp_tokens(tok, arch["vocab_size"])
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        **arch,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        suppress_tokens=ct2_cfg.get("suppress_ids", []),
        begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin", [220, eot]),
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    expected = model.state_dict()
    for name in set(expected) - set(sd):
        if name.endswith(".bias"):  # CTranslate2 omits all-zero biases
            sd[name] = torch.zeros(expected[name].shape, dtype=torch.float32)
    missing = set(expected) - set(sd) - {"proj_out.weight"}
    unexpected = set(sd) - set(expected)
    if missing or unexpected:
        raise CT2FormatError(f"tensor mismatch: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.load_state_dict(sd, strict=False, assign=True)
    model.tie_weights()
    model.generation_config = build_generation_config(
        tok,
        config,
        alignment_heads=ct2_cfg.get("alignment_heads"),
        suppress_tokens=ct2_cfg.get("suppress_ids", []),
        begin_suppress_tokens=ct2_cfg.get("suppress_ids_begin"),
    )
    own = ModelLanguage.read(ct2_cfg)  # a whisperft export keeps its fine-tune's language
    if own is not None:
        set_language(model, own.language.code, own=own)
    with staged_dir(Path(out_dir)) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        mark_complete(tmp, {"source": str(ct2_dir)})
    return Path(out_dir)


def _add_timestamp_tokens(tok: Any, vocab_size: int) -> None:
    """English-only CTranslate2 tokenizers stop before the timestamp tokens; add them so ids line up."""
    begin = tok.convert_tokens_to_ids("<|notimestamps|>") + 1
    have = len(tok)
    if have >= vocab_size or have != begin:
        return
    stamps = [
        AddedToken(f"<|{i * TIME_PRECISION:.2f}|>", special=True, normalized=False) for i in range(vocab_size - begin)
    ]
    tok.add_tokens(stamps, special_tokens=True)
