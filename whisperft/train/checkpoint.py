"""What a run writes of its model: checkpoints that resume exactly (save atomically, mark complete, keep the
newest, restore the newest), and the model folders ``best/`` and ``final/``.

A checkpoint is ``OUTPUT_DIR/checkpoints/step-NNNNNNN/``: Accelerate's state (weights, optimizer,
scheduler, RNG) plus ``trainer_state.json`` (step, epoch, data position, best WER, history). It is
written as ``.tmp-step-NNNNNNN``, marked ``_COMPLETE`` and renamed into place, so a crash leaves
either the whole checkpoint or nothing that is ever read. ``best/`` and ``final/`` are standard Hugging Face
model folders with the resolved config beside the weights, staged and renamed into place the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from whisperft.config import Config
from whisperft.io import atomic_write_json, check_free_space, is_complete, mark_complete, staged_dir
from whisperft.models.lora import is_lora, save_merged

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
CKPT_RE = re.compile(r"^step-(\d+)$")


@dataclass
class TrainState:
    """What a checkpoint records beyond the Accelerate state."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0  # micro-batches of this epoch consumed by completed optimizer steps
    best_wer: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    skipped_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:07d}"


def find_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. Half-written ones (no _COMPLETE marker) are ignored."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = CKPT_RE.match(p.name)
        if m and p.is_dir() and is_complete(p):
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def has_checkpoint(output_dir: Path, step: int) -> bool:
    saved = find_checkpoints(output_dir)
    return bool(saved) and saved[-1] == checkpoint_dir(output_dir, step)


def save_checkpoint(accelerator: Any, output_dir: Path, state: TrainState, need_bytes: int, keep: int) -> None:
    """Save on every process (Accelerate writes per-process RNG state); only the main one renames and prunes."""
    main = accelerator.is_main_process
    final = checkpoint_dir(output_dir, state.step)
    tmp = final.with_name(f".tmp-{final.name}")
    if main:
        check_free_space(final.parent if final.parent.exists() else output_dir, need_bytes, "a checkpoint")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if main:
        atomic_write_json(tmp / STATE_FILE, asdict(state))
        mark_complete(tmp, {"step": state.step})
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in find_checkpoints(output_dir)[: -keep if keep else None]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def restore_checkpoint(accelerator: Any, output_dir: Path) -> tuple[Path, TrainState] | None:
    """Load the newest complete checkpoint into the prepared objects; None when there is none."""
    checkpoints = find_checkpoints(output_dir)
    if not checkpoints:
        return None
    ckpt = checkpoints[-1]
    accelerator.load_state(str(ckpt))
    return ckpt, TrainState(**json.loads((ckpt / STATE_FILE).read_text()))


def save_weights(
    accelerator: Any, model: Any, processor: Any, cfg: Config, folder: Path, sharded: bool = False
) -> None:
    """The model as it is now, into ``folder``; every process calls this (FSDP and DeepSpeed gather the
    full weights from all of them, ``sharded``), the main process writes."""
    weights = accelerator.get_state_dict(model) if sharded else None
    if accelerator.is_main_process:
        save_model(accelerator.unwrap_model(model), processor, folder, cfg, weights)
    accelerator.wait_for_everyone()


def save_model(model: Any, processor: Any, folder: Path, cfg: Config, weights: dict | None = None) -> None:
    """Save a standard HF model folder atomically (temp folder + rename), with the resolved config.
    ``weights``: the full state dict when the model's own parameters are shards (FSDP, DeepSpeed)."""
    with staged_dir(folder) as tmp:
        if is_lora(model):
            save_merged(model, tmp)  # a standard model folder, plus the adapter alone in adapter/
        else:
            model.save_pretrained(tmp, safe_serialization=True, state_dict=weights)
        processor.save_pretrained(tmp)
        cfg.save(tmp / "config.yaml")


def copy_model(src: Path, dst: Path) -> None:
    with staged_dir(dst) as tmp:
        for p in src.iterdir():
            if p.is_file() and p.name != "_COMPLETE":
                shutil.copy2(p, tmp / p.name)
            elif p.is_dir():  # a LoRA run's adapter/
                shutil.copytree(p, tmp / p.name)
