"""``whisperft train``: the Hugging Face Whisper recipe as an explicit Accelerate loop.

Linear warmup and decay, gradient accumulation, mixed precision, gradient
checkpointing, periodic generation-based WER on the validation split, best model
by WER with early stopping, and checkpoints that resume exactly: weights,
optimizer, scheduler, RNG and data position.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from whisperft.config import Config
from whisperft.errors import UsageError, WhisperftError
from whisperft.features import N_FRAMES, pad_features
from whisperft.io import RunLock, atomic_write_json, check_free_space, is_complete, mark_complete
from whisperft.store import FeatureStore, Split

logger = logging.getLogger("whisperft")

CKPT_RE = re.compile(r"^step-(\d+)$")


def fitting_rows(split: Split, max_frames: int) -> np.ndarray:
    """Clips whose speech fits the encoder window; longer ones are left out (their text would be cut)."""
    return np.flatnonzero(np.round(split.duration * 100) <= max_frames)


class StoreDataset(Dataset):
    """Training examples from a store split, one clip each: frames, pad value, and full labels."""

    def __init__(self, split: Split, prefix: list[int], eot: int, max_frames: int = N_FRAMES) -> None:
        self.split = split
        self.prefix = list(prefix)
        self.eot = int(eot)
        self.rows = fitting_rows(split, max_frames)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        i = int(self.rows[idx])
        labels = self.prefix + self.split.labels(i).tolist() + [self.eot]
        return {"frames": np.array(self.split.frames(i)), "pad": float(self.split.pad_value[i]), "labels": labels}


@dataclass
class WhisperCollator:
    """Pads frames to Whisper's input window and labels with -100.

    Labels hold the prefix after <|startoftranscript|> (language, task, no-timestamps),
    the text and <|endoftext|>. The model shifts them right and inserts the start token
    itself, so a start token found at the front of a label is removed, never doubled.
    """

    decoder_start_token_id: int
    n_frames: int = N_FRAMES

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        feats = pad_features([(it["frames"], it["pad"]) for it in items], self.n_frames)
        seqs = [it["labels"][1:] if it["labels"][0] == self.decoder_start_token_id else it["labels"] for it in items]
        labels = torch.full((len(seqs), max(len(s) for s in seqs)), -100, dtype=torch.long)
        for i, s in enumerate(seqs):
            labels[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return {"input_features": feats, "labels": labels}


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on (seed, epoch), so a resumed run sees the same data."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):  # type: ignore[no-untyped-def]
        g = torch.Generator()
        g.manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


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


@dataclass
class TrainResult:
    output_dir: Path
    final_dir: Path
    steps: int
    best_wer: float | None
    best_step: int | None
    stopped_early: bool
    seconds: float
    metrics: dict[str, Any]


class _Interrupted(Exception):
    pass


def find_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first. Half-written ones (no _COMPLETE marker) are ignored."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = CKPT_RE.match(p.name)
        if m and p.is_dir() and is_complete(p):
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def _mixed_precision(requested: str) -> str:
    if requested == "fp16" and not torch.cuda.is_available():
        logger.warning("mixed_precision fp16 needs a CUDA GPU; training in fp32 on the CPU instead")
        return "no"
    if requested == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UsageError("train.mixed_precision: this GPU does not support bf16; use fp16")
    return requested


def train(cfg: Config, config_path: str | None = None, progress: bool = True) -> TrainResult:
    """Run (or resume) training as configured. Returns where the final model is and its metrics."""
    from accelerate import Accelerator
    from accelerate.utils import gather_object, set_seed
    from transformers import get_scheduler

    from whisperft.evaluate import evaluate_split, score
    from whisperft.models import (
        apply_audio_context,
        check_language,
        context_frames,
        decoder_prefix,
        load_model,
        load_processor,
        resolve_model,
        set_language,
    )

    t_start = time.perf_counter()
    out = Path(cfg.train.output_dir)
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(cfg.train.mixed_precision),
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available(),
    )
    main = accelerator.is_main_process
    lock = RunLock(out)
    if main:
        lock.acquire()
    try:
        set_seed(cfg.train.seed)
        store = FeatureStore(cfg.data.store)
        train_split = store.split(cfg.data.train_split)
        if len(train_split) == 0:
            raise WhisperftError(f"{cfg.data.store}/{cfg.data.train_split} has no examples; see prepare_report.json")
        eval_split = store.split(cfg.data.eval_split) if cfg.data.eval_split in store.splits else None
        if eval_split is not None and len(eval_split) == 0:
            eval_split = None
        if eval_split is None:
            logger.warning("no %r split in the store: training without WER evaluation", cfg.data.eval_split)

        checkpoints = find_checkpoints(out)
        model_path = resolve_model(cfg.model.name)
        processor = load_processor(model_path)
        tokenizer = processor.tokenizer
        model = load_model(model_path, attn_implementation=cfg.model.attn_implementation)
        check_language(model, cfg.language)
        apply_audio_context(model, cfg.model.audio_context_s)
        n_frames = context_frames(model.config)
        if store.n_mels != model.config.num_mel_bins:
            raise UsageError(
                f"{cfg.data.store} has {store.n_mels}-bin features but {cfg.model.name} expects "
                f"{model.config.num_mel_bins}; run prepare with --model {cfg.model.name}"
            )
        if store.meta.get("vocab_size") not in (None, len(tokenizer)):
            raise UsageError(f"{cfg.data.store} was tokenized for another vocabulary; rerun prepare with this model")
        set_language(model, cfg.language, cfg.task)
        model.config.use_cache = not cfg.train.gradient_checkpointing
        if cfg.train.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if cfg.train.freeze_encoder:
            model.model.encoder.requires_grad_(False)
            model.model.encoder._requires_grad = False

        prefix = decoder_prefix(tokenizer, model.config, cfg.language, cfg.task)
        rows = fitting_rows(train_split, n_frames)
        if len(rows) < len(train_split):
            logger.warning(
                "%d of %d training clips are longer than the %.1f s audio context and are left out",
                len(train_split) - len(rows),
                len(train_split),
                n_frames / 100,
            )
        if len(rows) == 0:
            raise UsageError("model.audio_context_s is shorter than every training clip")
        dataset = _training_dataset(cfg, train_split, rows, tokenizer, model.config, prefix, n_frames)
        sampler = EpochSampler(len(dataset), cfg.train.seed)
        collator = WhisperCollator(model.config.decoder_start_token_id, n_frames)
        workers = cfg.data.num_workers
        loader = DataLoader(
            dataset,
            batch_size=cfg.train.batch_size,
            sampler=sampler,
            collate_fn=collator,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=workers > 0,
            drop_last=False,
        )
        params = [p for p in model.parameters() if p.requires_grad]
        fused = torch.cuda.is_available()
        optimizer = torch.optim.AdamW(
            params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay, fused=fused, foreach=not fused
        )
        scheduler = get_scheduler(
            cfg.train.lr_scheduler,
            optimizer,
            num_warmup_steps=cfg.train.warmup_steps,
            num_training_steps=cfg.train.max_steps,
        )
        model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
        accelerator.register_for_checkpointing(scheduler)

        state = TrainState()
        if checkpoints:
            ckpt = checkpoints[-1]
            accelerator.load_state(str(ckpt))
            state = TrainState(**json.loads((ckpt / "trainer_state.json").read_text()))
            if main:
                logger.info("resuming from %s (step %d)", ckpt, state.step)
        elif main and (out / "final").exists():
            raise UsageError(f"{out} already holds a finished run (final/); choose another train.output_dir")
        if main:
            # refuse now rather than after hours of steps: a checkpoint holds weights and optimizer moments
            check_free_space(out, _model_bytes(model) * 4, "checkpoints")
            out.mkdir(parents=True, exist_ok=True)
            cfg.save(out / "config.yaml")

        def save_checkpoint() -> None:
            root = out / "checkpoints"
            final = root / f"step-{state.step:07d}"
            tmp = root / f".tmp-step-{state.step:07d}"
            if main:
                check_free_space(root if root.exists() else out, _model_bytes(model) * 4, "a checkpoint")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(tmp), safe_serialization=True)
            accelerator.wait_for_everyone()
            if main:
                atomic_write_json(tmp / "trainer_state.json", state.__dict__)
                mark_complete(tmp, {"step": state.step})
                if final.exists():
                    shutil.rmtree(final)
                os.replace(tmp, final)
                keep = cfg.train.save_total_limit
                for old in find_checkpoints(out)[: -keep if keep else None]:
                    if old != final:
                        shutil.rmtree(old, ignore_errors=True)
            accelerator.wait_for_everyone()

        def run_eval() -> dict[str, Any]:
            assert eval_split is not None
            n = (
                len(eval_split)
                if cfg.data.max_eval_samples is None
                else min(len(eval_split), cfg.data.max_eval_samples)
            )
            mine = list(range(accelerator.process_index, n, accelerator.num_processes))
            hyps = evaluate_split(
                accelerator.unwrap_model(model),
                tokenizer,
                eval_split,
                cfg.language,
                batch_size=cfg.eval.batch_size,
                num_beams=cfg.eval.num_beams,
                max_new_tokens=cfg.eval.max_new_tokens,
                indices=mine,
                n_frames=n_frames,
            )
            gathered = dict(gather_object(list(hyps.items())))
            ids = list(range(n))
            metrics, _ = score(
                [eval_split.ids[i] for i in ids],
                [eval_split.texts[i] for i in ids],
                [gathered[i] for i in ids],
                cfg.language,
            )
            return metrics

        def save_best() -> None:
            if main:
                _save_model(accelerator.unwrap_model(model), processor, out / "best", cfg)
            accelerator.wait_for_everyone()

        stop_early = False
        bad_in_row = 0
        interrupted = False
        stop_requested = {"flag": False}
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum: int, frame: Any) -> None:
            # finish the current optimizer step, save a checkpoint, then exit; a second Ctrl-C stops at once
            stop_requested["flag"] = True
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if main:
                logger.warning("stopping after this step and saving a checkpoint (Ctrl-C again to abort now)")

        for sig in handlers:
            signal.signal(sig, on_signal)
        bar = _Progress(cfg.train.max_steps, state.step, enabled=progress and main)
        model.train()
        loss_sum, loss_n, t_log = 0.0, 0, time.perf_counter()
        try:
            while state.step < cfg.train.max_steps and not stop_early:
                skip = state.batches_in_epoch
                epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
                # Accelerate's loaders call sampler.set_epoch(their own counter) when iterated: set both
                epoch_loader.set_epoch(state.epoch)
                sampler.set_epoch(state.epoch)
                consumed = skip
                for batch in epoch_loader:
                    consumed += 1
                    with accelerator.accumulate(model):
                        loss = model(**batch).loss
                        flags = torch.tensor(
                            [float(torch.isfinite(loss.detach())), float(stop_requested["flag"])], device=loss.device
                        )
                        flags = accelerator.gather(flags.reshape(1, 2)).reshape(-1, 2)
                        finite = bool(flags[:, 0].all())
                        stopping = bool(flags[:, 1].any())
                        if finite:
                            accelerator.backward(loss)
                            loss_sum += float(loss.detach())
                            loss_n += 1
                        if accelerator.sync_gradients and finite and cfg.train.max_grad_norm > 0:
                            norm = accelerator.clip_grad_norm_(model.parameters(), cfg.train.max_grad_norm)
                            finite = norm is None or bool(torch.isfinite(torch.as_tensor(norm)))
                        if finite:
                            optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    if not accelerator.sync_gradients:
                        continue
                    state.batches_in_epoch = consumed
                    if not finite:
                        bad_in_row += 1
                        state.skipped_steps += 1
                        logger.warning(
                            "non-finite loss at step %d: step skipped (%d in a row)", state.step + 1, bad_in_row
                        )
                        if bad_in_row >= cfg.train.max_bad_steps:
                            raise WhisperftError(
                                f"{bad_in_row} non-finite losses in a row; stopping. The last good checkpoint is in "
                                f"{out / 'checkpoints'}; lower train.learning_rate or check the data"
                            )
                        continue
                    bad_in_row = 0
                    if not accelerator.optimizer_step_was_skipped:
                        scheduler.step()
                    state.step += 1
                    lr = scheduler.get_last_lr()[0]
                    if cfg.train.logging_steps and state.step % cfg.train.logging_steps == 0 and loss_n:
                        rec = {
                            "step": state.step,
                            "loss": loss_sum / loss_n,
                            "lr": lr,
                            "steps_per_s": cfg.train.logging_steps / (time.perf_counter() - t_log),
                        }
                        state.history.append(rec)
                        if main:
                            _append_log(out, rec)
                        loss_sum, loss_n, t_log = 0.0, 0, time.perf_counter()
                    bar.update(state.step, loss=float(loss.detach()), lr=lr)
                    last = state.step >= cfg.train.max_steps
                    if eval_split is not None and (state.step % cfg.train.eval_steps == 0 or last):
                        metrics = run_eval()
                        rec = {"step": state.step, **{f"eval_{k}": v for k, v in metrics.items()}}
                        state.history.append(rec)
                        if main:
                            _append_log(out, rec)
                            bar.note(f"step {state.step}: eval WER {metrics['wer']:.3f}")
                        if state.best_wer is None or metrics["wer"] < state.best_wer:
                            state.best_wer, state.best_step = metrics["wer"], state.step
                            state.evals_without_improvement = 0
                            save_best()
                        else:
                            state.evals_without_improvement += 1
                            patience = cfg.train.early_stopping_patience
                            if patience and state.evals_without_improvement >= patience:
                                stop_early = True
                    if state.step % cfg.train.save_steps == 0 or last or stop_early:
                        save_checkpoint()
                    if last or stop_early:
                        break
                    if stopping:
                        raise _Interrupted
                else:
                    state.epoch += 1
                    state.batches_in_epoch = 0
        except _Interrupted:
            interrupted = True
        finally:
            bar.close()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if interrupted:
            saved = find_checkpoints(out)
            if state.step > 0 and not (saved and saved[-1].name == f"step-{state.step:07d}"):
                save_checkpoint()
            raise WhisperftError(
                f"interrupted at step {state.step}; checkpoint saved. Run the same command again to resume"
            )

        # the final model: the best by validation WER when there was evaluation, else the last weights
        final = out / "final"
        if main:
            if state.best_step is not None and (out / "best").is_dir():
                _copy_model(out / "best", final)
                source = f"best (step {state.best_step})"
            else:
                _save_model(accelerator.unwrap_model(model), processor, final, cfg)
                source = f"last (step {state.step})"
            metrics = {
                "steps": state.step,
                "best_wer": state.best_wer,
                "best_step": state.best_step,
                "final_from": source,
                "stopped_early": stop_early,
                "skipped_steps": state.skipped_steps,
                "train_seconds": time.perf_counter() - t_start,
                "history": state.history,
            }
            atomic_write_json(final / "metrics.json", metrics)
            cfg.save(final / "config.yaml")
            mark_complete(final)
        else:
            metrics = {}
        accelerator.wait_for_everyone()
        return TrainResult(
            out, final, state.step, state.best_wer, state.best_step, stop_early, time.perf_counter() - t_start, metrics
        )
    finally:
        lock.release()
        accelerator.end_training()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _training_dataset(
    cfg: Config, split: Split, rows: np.ndarray, tokenizer: Any, model_config: Any, prefix: list[int], n_frames: int
) -> Dataset:
    """One clip per example, or with ``data.pack`` several clips per encoder window."""
    if not cfg.data.pack:
        return StoreDataset(split, prefix, tokenizer.eos_token_id, max_frames=n_frames)
    from whisperft.packing import PackedDataset

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


def _model_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _save_model(model: Any, processor: Any, folder: Path, cfg: Config) -> None:
    """Save a standard HF model folder atomically (temp folder + rename)."""
    from whisperft.io import staged_dir

    with staged_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        cfg.save(tmp / "config.yaml")


def _copy_model(src: Path, dst: Path) -> None:
    from whisperft.io import staged_dir

    with staged_dir(dst) as tmp:
        for p in src.iterdir():
            if p.is_file() and p.name != "_COMPLETE":
                shutil.copy2(p, tmp / p.name)


def _append_log(out: Path, rec: dict[str, Any]) -> None:
    with open(out / "train_log.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec) + "\n")


class _Progress:
    """A rich progress bar showing loss, learning rate, steps/s and ETA (main process only)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, loss="-", lr="-", rate="")
        self.t0, self.s0 = time.perf_counter(), start
        self.progress.start()

    def update(self, step: int, loss: float, lr: float) -> None:
        if not self.enabled:
            return
        dt = time.perf_counter() - self.t0
        rate = (step - self.s0) / dt if dt > 0 else 0.0
        loss_s = f"{loss:.4f}" if math.isfinite(loss) else "nan"
        self.progress.update(self.task, completed=step, loss=loss_s, lr=f"{lr:.2e}", rate=f"{rate:.2f} step/s")

    def note(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
