"""LoRA for Whisper through peft: add adapters, save the merged model and the adapter alone.

Training a LoRA run keeps the base weights frozen and learns a low-rank update ``B @ A`` per
target projection. What a run saves is a standard Whisper folder with the update merged in, so
eval, transcribe, export, serve and push work unchanged, plus the adapter alone in ``adapter/``
(peft's own format, loadable with ``PeftModel.from_pretrained``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer

ADAPTER_DIR = "adapter"


def add_lora(
    model: Any, r: int, alpha: float, dropout: float, targets: Sequence[str], decoder_only: bool = False
) -> PeftModel:
    """Wrap ``model`` with LoRA adapters on ``targets``; everything else is frozen.

    ``decoder_only`` (with ``train.freeze_encoder``) puts adapters in the decoder alone.
    """
    names = "|".join(re.escape(t) for t in targets)
    scope = r"model\.decoder\." if decoder_only else r"model\.(encoder|decoder)\."
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=rf"{scope}.*\.({names})", bias="none"
    )
    return get_peft_model(model, config)


def is_lora(model: Any) -> bool:
    return isinstance(model, PeftModel)


def trainable_summary(model: Any) -> tuple[int, int]:
    """(trainable parameters, all parameters)."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


@torch.no_grad()
def merged_state_dict(model: PeftModel) -> dict[str, torch.Tensor]:
    """Base plus adapter as a plain Whisper state dict, computed without changing the model."""
    base = model.get_base_model()
    deltas = {
        f"{name}.weight": module.get_delta_weight(module.active_adapters[0])
        for name, module in base.named_modules()
        if isinstance(module, LoraLayer) and module.active_adapters
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in base.state_dict().items():
        if ".lora_" in key:
            continue
        plain = key.replace(".base_layer.", ".")
        out[plain] = value + deltas[plain].to(value.dtype) if plain in deltas else value
    return out


def save_merged(model: PeftModel, folder: Path) -> None:
    """A standard Whisper folder (weights and config) with the adapter merged in, and ``adapter/``."""
    base = model.get_base_model()
    base.save_pretrained(folder, state_dict=merged_state_dict(model), safe_serialization=True)
    model.save_pretrained(Path(folder) / ADAPTER_DIR, safe_serialization=True)
