"""Measure the peak memory of real training steps on the CPU, in a fresh process.

``python -m tests.step_memory '{"plan": {...}, "config": {...}, "batch": 4, "labels": 40}'`` builds a
random Whisper of that config, sets it up as ``whisperft train`` does (frozen encoder positions,
checkpointing, a frozen encoder or LoRA), runs two optimizer steps on full 30 s windows, and prints
the peak resident memory those steps added on top of the loaded model, plus the model's weights.
Large tensors are mapped straight from the system (``MALLOC_MMAP_THRESHOLD_``), so freed memory leaves
the process and the peak is the peak of live tensors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psutil
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from whisperft.models.lora import add_lora


def high_water_mark() -> int:
    """This process's peak resident bytes since its exec (VmHWM). Not ru_maxrss: Linux carries that over
    from the forked parent, so a child of a large pytest process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(spec: dict) -> dict:
    torch.manual_seed(0)
    config = WhisperConfig(**spec["config"])
    plan = spec["plan"]
    model = WhisperForConditionalGeneration(config)
    model.model.encoder.embed_positions.requires_grad_(False)
    if plan.get("checkpointing"):
        model.config.use_cache = False
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if plan.get("freeze_encoder"):
        model.model.encoder.requires_grad_(False)
    if plan.get("method") == "lora":
        model = add_lora(model, plan["lora_r"], 2 * plan["lora_r"], plan["lora_dropout"], plan["lora_targets"],
                         plan["freeze_encoder"])  # fmt: skip
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, foreach=True)
    frames = 2 * config.max_source_positions
    x = torch.randn(spec["batch"], config.num_mel_bins, frames)
    y = torch.randint(0, config.vocab_size - 200, (spec["batch"], spec["labels"]))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    before = psutil.Process().memory_info().rss
    for _ in range(2):
        loss = model(input_features=x, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = high_water_mark()
    return {"measured": peak - before + weights, "weights": weights}


if __name__ == "__main__":
    torch.set_num_threads(2)
    print(json.dumps(main(json.loads(sys.argv[1]))))
