"""Everything a training run needs before its first step: splits, model, data loader, optimizer, schedule.

``build`` checks the store against the model (mel bins, vocabulary, audio context) and the
config, so a run that cannot work fails here, in seconds, with one line naming the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
import yaml
from accelerate.utils import DistributedType, gather_object
from torch.utils.data import DataLoader, Dataset
from transformers import get_scheduler

from whisperft.config import Config, parse_size
from whisperft.data.augment import Augmenter, ClipAugment
from whisperft.data.batches import ClipFrames, EpochSampler, StoreDataset, WhisperCollator, fitting_rows
from whisperft.data.mixing import MixedDataset
from whisperft.data.packing import PackedDataset
from whisperft.data.remote import local_store
from whisperft.data.store import FeatureStore, Split
from whisperft.errors import UsageError, WhisperftError
from whisperft.features import HOP_LENGTH
from whisperft.models.lora import add_lora, trainable_summary
from whisperft.models.registry import load_model, load_processor, resolve_model
from whisperft.models.whisper import (
    apply_audio_context,
    check_language,
    context_frames,
    decoder_prefix,
    feature_extractor_for,
    set_language,
)
from whisperft.train.auto_batch import cuda_fits, largest_fitting, split_effective
from whisperft.train.checkpoint import find_checkpoints
from whisperft.train.language_token import choose_language_token, prompt_token
from whisperft.train.plan import estimate, label_tokens, plan_from_config

logger = logging.getLogger("whisperft")

AUTO_EFFECTIVE_BATCH = 16  # the recipe's batch, when batch_size is auto and effective_batch_size is not set


SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)  # Accelerate's kinds that spread the weights


@dataclass
class Setup:
    """What fit() works with, built once; model, optimizer and loader are already prepared by Accelerate."""

    cfg: Config
    out: Path
    accelerator: Any
    model: Any
    processor: Any
    optimizer: Any
    scheduler: Any
    loader: Any
    sampler: EpochSampler
    eval_splits: dict[str, Split]  # per source; empty when data.eval_split is null
    n_frames: int
    on_eval: Callable[[int, dict[str, Any]], None] | None = None  # told (step, metrics) after each evaluation

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def sharded(self) -> bool:
        """FSDP or DeepSpeed (``accelerate launch --config_file configs/accelerate/...``): the weights may be
        spread over the processes, so saving gathers them and every process takes part in each forward pass."""
        return self.accelerator.distributed_type in SHARDED


@dataclass
class Source:
    """One training source (the store, or one entry of ``data.mix``) with its splits."""

    name: str
    location: str
    weight: float
    store: FeatureStore
    train: Split
    eval: Split | None


def open_sources(cfg: Config) -> list[Source]:
    out = []
    for name, location, weight in cfg.data.sources():
        store = FeatureStore(local_store(location))
        out.append(Source(name, location, weight, store, *load_splits(cfg, store, location)))
    return out


def build(cfg: Config, accelerator: Any) -> Setup:
    sources = open_sources(cfg)
    model, processor = load_for_training(cfg, sources)
    n_frames = context_frames(model.config)
    if cfg.train.batch_size == "auto":
        longest = max(sources, key=lambda s: int(s.train.n_labels.max()))
        choose_batch_size(cfg, model, accelerator, n_frames, longest.train)
    parts = [
        training_dataset(cfg, s.train, processor.tokenizer, model.config, n_frames, source=k)
        for k, s in enumerate(sources)
    ]
    dataset = parts[0]
    if len(parts) > 1:
        dataset = MixedDataset(parts, [s.weight for s in sources], cfg.train.seed)
        mix = ", ".join(f"{s.name} {c} of {len(p)}" for s, c, p in zip(sources, dataset.counts, parts, strict=True))
        logger.info("mixing %d sources, examples per epoch: %s", len(parts), mix)
    sampler = EpochSampler(len(dataset), cfg.train.seed)
    loader = DataLoader(
        dataset,
        batch_size=cfg.train.batch_size,
        sampler=sampler,
        collate_fn=WhisperCollator(model.config.decoder_start_token_id, n_frames),
        num_workers=cfg.data.num_workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=cfg.data.num_workers > 0,
        drop_last=False,
    )
    optimizer, scheduler = make_optimizer(cfg, model)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    if accelerator.is_fsdp2:
        # generate() calls the encoder directly, past the root unit's gather of its own weights (convolutions,
        # positions, norms): register it as a forward, as transformers' Trainer does
        torch.distributed.fsdp.register_fsdp_forward_method(accelerator.unwrap_model(model), "generate")
    accelerator.register_for_checkpointing(scheduler)
    out = Path(cfg.train.output_dir)
    evals = {s.name: s.eval for s in sources if s.eval is not None}
    return Setup(cfg, out, accelerator, model, processor, optimizer, scheduler, loader, sampler, evals, n_frames)


def choose_batch_size(cfg: Config, model: Any, accelerator: Any, n_frames: int, split: Split) -> None:
    """``train.batch_size: auto``: the largest batch that fits, with the accumulation that keeps
    ``effective_batch_size``; a resumed run keeps what it chose the first time."""
    t = cfg.train
    effective, processes = t.effective_batch_size or AUTO_EFFECTIVE_BATCH, accelerator.num_processes
    saved = Path(t.output_dir) / "config.yaml"
    if find_checkpoints(Path(t.output_dir)) and saved.is_file():
        before = yaml.safe_load(saved.read_text(encoding="utf-8")).get("train", {})
        t.batch_size, t.gradient_accumulation_steps = before["batch_size"], before["gradient_accumulation_steps"]
        accelerator.gradient_accumulation_steps = t.gradient_accumulation_steps
        logger.info(
            "batch_size auto: resuming with the batch chosen before, %d x %d",
            t.batch_size,
            t.gradient_accumulation_steps,
        )
        return
    tokens, _ = label_tokens(cfg, model.config, split)
    est = estimate(model.config, plan_from_config(cfg), tokens)
    if torch.cuda.is_available():
        device = accelerator.device
        total = torch.cuda.get_device_properties(device).total_memory
        limit = parse_size(t.memory_limit) if t.memory_limit else int(total * 0.95)
        fits = cuda_fits(
            model.to(device), accelerator.autocast, model.config.num_mel_bins, n_frames, tokens, est.optimizer, limit
        )
        how = f"tried on {torch.cuda.get_device_name(device)}"
    else:  # a CPU has no out-of-memory error to catch: the estimate decides
        limit = parse_size(t.memory_limit) if t.memory_limit else int(psutil.virtual_memory().available * 0.8)
        fits = lambda b: est.total(b, cuda=False) <= limit  # noqa: E731
        how = "estimated (no GPU)"
    cap = effective // processes if effective >= processes else 1
    largest = min(gather_object([largest_fitting(fits, cap)]))  # every process agrees on the smallest
    if largest == 0:
        raise WhisperftError(
            f"train.batch_size auto: not even one example fits in {limit / 2**30:.1f} GB; turn on "
            "train.gradient_checkpointing, mixed precision or train.method: lora (whisperft plan shows each)"
        )
    t.batch_size, t.gradient_accumulation_steps = split_effective(effective, processes, largest)
    t.effective_batch_size = None  # the saved config holds the choice, and reloads as a plain config
    accelerator.gradient_accumulation_steps = t.gradient_accumulation_steps
    logger.info(
        "batch_size auto: %d fits in %.1f GB (%s, largest %d); gradient_accumulation_steps %d keeps the "
        "effective batch %d = %d x %d x %d process(es)",
        t.batch_size,
        limit / 2**30,
        how,
        largest,
        t.gradient_accumulation_steps,
        effective,
        t.batch_size,
        t.gradient_accumulation_steps,
        processes,
    )


def load_splits(cfg: Config, store: FeatureStore, location: str) -> tuple[Split, Split | None]:
    """The training split, and the validation split unless ``data.eval_split`` is null (no evaluation)."""
    train_split = store.split(cfg.data.train_split)
    if len(train_split) == 0:
        raise UsageError(
            f"data.train_split: {location}/{cfg.data.train_split} has no examples; see prepare_report.json"
        )
    name = cfg.data.eval_split
    if name is None:
        logger.warning("data.eval_split is null: training without WER evaluation; final/ holds the last weights")
        return train_split, None
    off = "set data.eval_split: null to train without evaluation"
    if name not in store.splits:
        raise UsageError(f"data.eval_split: {location} has no {name!r} split ({', '.join(store.splits)}); {off}")
    eval_split = store.split(name)
    if len(eval_split) == 0:
        raise UsageError(
            f"data.eval_split: {location}/{name} has no examples left after prepare's filters "
            f"(see prepare_report.json); {off}"
        )
    return train_split, eval_split


def load_for_training(cfg: Config, sources: list[Source]) -> tuple[Any, Any]:
    """The model to fine-tune, with its processor, checked against every store and set up as configured."""
    model_path = resolve_model(cfg.model.name)
    processor = load_processor(model_path)
    model = load_model(model_path, attn_implementation=cfg.model.attn_implementation)
    check_language(model, cfg.language)
    # Whisper's encoder positions are fixed sinusoids (OpenAI keeps them in a buffer); transformers 5
    # builds them frozen but from_pretrained makes every loaded tensor trainable again
    model.model.encoder.embed_positions.requires_grad_(False)
    apply_audio_context(model, cfg.model.audio_context_s)
    if cfg.model.audio_context_s is not None:
        processor.feature_extractor = feature_extractor_for(model.config)  # saved with the model: chunk_length
    for src in sources:
        if src.store.n_mels != model.config.num_mel_bins:
            raise UsageError(
                f"{src.location} has {src.store.n_mels}-bin features but {cfg.model.name} expects "
                f"{model.config.num_mel_bins}; run prepare with --model {cfg.model.name}"
            )
        if src.store.meta.get("vocab_size") not in (None, len(processor.tokenizer)):
            raise UsageError(f"{src.location} was tokenized for another vocabulary; rerun prepare with this model")
    own = choose_language_token(cfg, model, processor.tokenizer, sources[0].train)
    set_language(model, cfg.language, cfg.task, own)
    model.config.use_cache = not cfg.train.gradient_checkpointing
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.train.freeze_encoder:
        model.model.encoder.requires_grad_(False)
        model.model.encoder._requires_grad = False
    if cfg.data.augment.spec_augment:  # Whisper masks the frames itself, in training mode only
        aug = cfg.data.augment
        model.config.update(
            {
                "apply_spec_augment": True,
                "mask_time_prob": aug.mask_time_prob,
                "mask_time_length": aug.mask_time_length,
                "mask_feature_prob": aug.mask_feature_prob,
                "mask_feature_length": aug.mask_feature_length,
            }
        )
    if cfg.train.method == "lora":
        lo = cfg.train.lora
        model = add_lora(model, lo.r, lo.alpha, lo.dropout, lo.target_modules, decoder_only=cfg.train.freeze_encoder)
        trainable, total = trainable_summary(model)
        logger.info(
            "LoRA r=%d: training %s of %s parameters (%.2f%%)",
            lo.r,
            f"{trainable:,}",
            f"{total:,}",
            100 * trainable / total,
        )
    return model, processor


def clip_frames(cfg: Config, split: Split, n_frames: int, source: int = 0) -> ClipFrames | None:
    """With waveform augmentation, each clip's frames come from its augmented audio; else None (stored)."""
    aug = cfg.data.augment
    if not aug.needs_audio:
        return None
    if not split.has_audio:
        raise UsageError(
            f"data.augment: {split.folder.parent} keeps log-mel frames only; noise, speed, pitch, gain and telephone "
            "need the audio: prepare it again with --audio opus (SpecAugment alone works without)"
        )
    logger.info(
        "augmenting the waveform (%s)",
        ", ".join(k for k in ("speed", "pitch", "gain", "noise", "telephone") if getattr(aug, f"{k}_prob") > 0),
    )
    augmenter = Augmenter(aug, allow_speed=not cfg.data.pack)
    return ClipAugment(split, augmenter, cfg.train.seed, n_frames * HOP_LENGTH, source)


def training_dataset(
    cfg: Config, split: Split, tokenizer: Any, model_config: Any, n_frames: int, source: int = 0
) -> Dataset:
    """One clip per example, or with ``data.pack`` several clips per encoder window."""
    prefix = decoder_prefix(tokenizer, model_config, prompt_token(cfg), cfg.task)
    rows = _fitting(split, n_frames)
    clip = clip_frames(cfg, split, n_frames, source)
    if not cfg.data.pack:
        return StoreDataset(split, prefix, tokenizer.eos_token_id, max_frames=n_frames, clip=clip)
    notimestamps = int(tokenizer.convert_tokens_to_ids("<|notimestamps|>"))
    packed = PackedDataset(
        split,
        rows,
        prefix,
        notimestamps=notimestamps,
        timestamp_begin=notimestamps + 1,  # <|0.00|> follows <|notimestamps|> in every Whisper vocabulary
        eot=tokenizer.eos_token_id,
        window_frames=n_frames,
        label_budget=int(model_config.max_target_positions),
        timestamp_fraction=cfg.data.timestamp_fraction,
        seed=cfg.train.seed,
        clip=clip,
    )
    plan = packed.plan
    logger.info(
        "packed %d clips into %d windows of %.1f s: %.1f clips per window, %.0f%% of frames hold speech",
        plan.clips,
        len(plan.windows),
        n_frames / 100,
        plan.clips_per_window,
        plan.fill * 100,
    )
    return packed


def _fitting(split: Split, n_frames: int) -> np.ndarray:
    """Rows that fit the encoder window, with a warning for the ones left out."""
    rows = fitting_rows(split, n_frames)
    if len(rows) < len(split):
        logger.warning(
            "%d of %d training clips are longer than the %.1f s audio context and are left out",
            len(split) - len(rows),
            len(split),
            n_frames / 100,
        )
    if len(rows) == 0:
        raise UsageError("model.audio_context_s is shorter than every training clip")
    return rows


def make_optimizer(cfg: Config, model: Any) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (fused on CUDA, or 8-bit with bitsandbytes) over the trainable parameters, and the schedule."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = torch.cuda.is_available()
    lr, decay = cfg.train.learning_rate, cfg.train.weight_decay
    optimizer = _adamw_8bit(params, lr, decay) if cfg.train.optimizer == "adamw_8bit" else None
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=fused, foreach=not fused)
    scheduler = get_scheduler(
        cfg.train.lr_scheduler,
        optimizer,
        num_warmup_steps=cfg.train.warmup_steps,
        num_training_steps=cfg.train.max_steps,
    )
    return optimizer, scheduler


def _adamw_8bit(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> Any:
    """bitsandbytes' 8-bit AdamW (a quarter of AdamW's state memory), or None with the reason logged."""
    if not torch.cuda.is_available():
        logger.warning("train.optimizer adamw_8bit needs a CUDA GPU; using torch's AdamW (32-bit states) on the CPU")
        return None
    try:
        import bitsandbytes as bnb  # deferred: optional, CUDA only
    except ImportError:
        logger.warning("train.optimizer adamw_8bit needs bitsandbytes (pip install bitsandbytes); using torch's AdamW")
        return None
    return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=weight_decay)
