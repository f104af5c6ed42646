"""``whisperft export --to openai``: an HF Whisper folder -> an openai-whisper checkpoint (``model.pt``).

The checkpoint is what ``whisper.load_model(path)`` reads: ``{"dims": ModelDimensions fields,
"model_state_dict": tensors under openai-whisper's names}``, the inverse of transformers'
``convert_openai_to_hf.py`` key table. openai-whisper pads every window to 30 s and knows only Whisper's
language tokens, so the model goes through ``standard.stock_whisper`` first. No converter for this
direction is kept up by either project, so the table lives here, checked by loading the file in
openai-whisper and transcribing (``parity.check_client``).
"""

from __future__ import annotations

import base64
import gzip
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from whisperft.errors import UsageError
from whisperft.export.parity import check_client
from whisperft.export.standard import ExportResult, model_language, parity_code, stock_whisper
from whisperft.export.targets import check_request
from whisperft.extras import missing_extra
from whisperft.io import staged_dir
from whisperft.languages import MODEL_KEY
from whisperft.models.registry import load_model

CHECKPOINT = "model.pt"
SAMPLE_LEN = 224  # openai-whisper's DecodingTask stops a decode at n_text_ctx // 2 = 448 // 2 new tokens

# HF name -> openai-whisper name, applied in order (regular expressions on the whole key).
RENAMES = (
    (r"^model\.encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^model\.decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^model\.decoder\.embed_tokens\.weight$", "decoder.token_embedding.weight"),
    (r"^model\.encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^model\.decoder\.layer_norm\.", "decoder.ln."),
    (r"^model\.(encoder|decoder)\.layers\.", r"\1.blocks."),
    (r"^model\.encoder\.conv", "encoder.conv"),
    (r"\.self_attn\.(q|k|v|out)_proj\.", r".attn.\1_proj."),
    (r"\.encoder_attn\.(q|k|v|out)_proj\.", r".cross_attn.\1_proj."),
    (r"\.q_proj\.", ".query."),
    (r"\.k_proj\.", ".key."),
    (r"\.v_proj\.", ".value."),
    (r"\.out_proj\.", ".out."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
)


def export_openai(
    model_path: str,
    out: str | Path,
    quantization: str = "float16",
    verify_audio: list[np.ndarray] | None = None,
    language: str | None = None,
) -> ExportResult:
    """Write ``out/model.pt`` for openai-whisper, then check it transcribes ``verify_audio`` as the HF model does.

    ``quantization``: float16 (as OpenAI's checkpoints) or float32. Raises UsageError for another value,
    WhisperftError when the parity check fails (nothing is written then).
    """
    quantization, lang, out = check_request("openai", quantization), parity_code(language), Path(out)
    with tempfile.TemporaryDirectory(prefix="whisperft-export-") as work:
        model_path = stock_whisper(model_path, Path(work), "openai-whisper")
        checkpoint = openai_checkpoint(model_path, torch.float16 if quantization == "float16" else torch.float32)
        with staged_dir(out) as tmp:
            torch.save(checkpoint, tmp / CHECKPOINT)
            parity = None
            if verify_audio:
                parity = check_client(
                    model_path,
                    verify_audio,
                    lang,
                    quantization,
                    "openai-whisper",
                    lambda clips, token: transcribe_openai(tmp / CHECKPOINT, clips, token),
                    SAMPLE_LEN,
                )
    return ExportResult.checked(out, quantization, parity)


def openai_checkpoint(model_path: str, dtype: torch.dtype) -> dict[str, Any]:
    """The dict ``whisper.load_model`` reads, built from a saved HF Whisper (30 s window).

    Besides ``dims`` and ``model_state_dict`` it holds ``alignment_heads`` (the base85 gzip mask that
    ``model.set_alignment_heads`` takes; absent when the model names none) and the fine-tune's language
    under ``languages.MODEL_KEY``; ``load_model`` ignores both.
    """
    model = load_model(model_path)
    cfg = model.config
    if not torch.equal(model.proj_out.weight, model.get_input_embeddings().weight):
        raise UsageError(
            f"{model_path}: its output projection is not tied to the token embeddings, which openai-whisper requires"
        )
    state = {}
    for key, tensor in model.state_dict().items():
        if key == "proj_out.weight":
            continue
        name = key
        for pattern, repl in RENAMES:
            name = re.sub(pattern, repl, name)
        state[name] = tensor.detach().to(dtype).contiguous()
    dims = {
        "n_mels": int(cfg.num_mel_bins),
        "n_vocab": int(cfg.vocab_size),
        "n_audio_ctx": int(cfg.max_source_positions),
        "n_audio_state": int(cfg.d_model),
        "n_audio_head": int(cfg.encoder_attention_heads),
        "n_audio_layer": int(cfg.encoder_layers),
        "n_text_ctx": int(cfg.max_target_positions),
        "n_text_state": int(cfg.d_model),
        "n_text_head": int(cfg.decoder_attention_heads),
        "n_text_layer": int(cfg.decoder_layers),
    }
    checkpoint: dict[str, Any] = {"dims": dims, "model_state_dict": state}
    heads = getattr(model.generation_config, "alignment_heads", None)
    if heads:
        mask = np.zeros((dims["n_text_layer"], dims["n_text_head"]), dtype=bool)
        for layer, head in heads:
            mask[layer, head] = True
        checkpoint["alignment_heads"] = base64.b85encode(gzip.compress(mask.tobytes()))
    own = model_language(model_path)
    if own is not None:
        checkpoint[MODEL_KEY] = own.to_dict()
    return checkpoint


def transcribe_openai(checkpoint: Path, clips: list[np.ndarray], token: str) -> list[str]:
    """Texts of 16 kHz clips (each under 30 s) by openai-whisper's ``load_model`` and the recipe of its README:
    ``pad_or_trim``, ``log_mel_spectrogram``, ``decode``; greedy, no timestamps, as the HF model decodes in the
    parity check. (``whisper.transcribe`` pads a short clip's log-mel with zeros rather than with the log-mel
    of silence; a model trained on a short ``audio_context_s`` can hear that.)"""
    try:
        import whisper  # deferred: an optional extra (openai-whisper)
    except ImportError:
        raise missing_extra("the openai parity check", ["whisper"]) from None
    model = whisper.load_model(str(checkpoint), device="cpu")
    mels = torch.stack(
        [
            whisper.log_mel_spectrogram(
                whisper.pad_or_trim(torch.from_numpy(np.asarray(c, dtype=np.float32))), model.dims.n_mels
            )
            for c in clips
        ]
    )
    options = whisper.DecodingOptions(
        language=token if model.is_multilingual else None, temperature=0.0, without_timestamps=True, fp16=False
    )
    return [str(r.text) for r in whisper.decode(model, mels, options)]
