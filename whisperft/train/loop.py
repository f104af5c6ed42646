"""``whisperft train``: the Hugging Face Whisper recipe as an explicit Accelerate loop, setup -> fit -> save.

Linear warmup and decay, gradient accumulation, mixed precision, gradient checkpointing,
periodic generation-based WER on the validation split, best model by WER with early stopping,
and checkpoints that resume exactly: weights, optimizer, scheduler, RNG and data position.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, broadcast_object_list, gather_object, set_seed

from whisperft.config import Config, parse_duration
from whisperft.errors import UsageError, WhisperftError
from whisperft.io import RunLock, atomic_write_json, check_free_space, mark_complete
from whisperft.metrics import score
from whisperft.models.decode import decode_split
from whisperft.text import Decoded, stop_counts
from whisperft.train.card import write_card
from whisperft.train.checkpoint import (
    TrainState,
    copy_model,
    has_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    save_weights,
)
from whisperft.train.curves import start_trackers, trackers
from whisperft.train.interrupt import StopSignals
from whisperft.train.language_token import prompt_token
from whisperft.train.progress import Budget, LossMeter, TrainProgress, append_log, restart_log
from whisperft.train.setup import SHARDED, Setup, build

logger = logging.getLogger("whisperft")

CHECKPOINT_BYTES_PER_WEIGHT_BYTE = 4  # weights + two AdamW moments + slack


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
    out_of_time: bool = False  # stopped by train.time_budget; the same command continues


def train(
    cfg: Config,
    config_path: str | None = None,
    progress: bool = True,
    on_eval: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Run (or resume) training as configured. Returns where the final model is and its metrics.

    ``on_eval(step, metrics)`` is called on the main process after each evaluation (a sweep reports the
    validation WER to its scheduler there); ``metrics`` holds ``wer`` and ``cer`` (fractions, or None when
    the references have no words) and the rest of what ``validate`` measures."""
    t_start = time.perf_counter()
    out = Path(cfg.train.output_dir)
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        # DeepSpeed clips inside its own step; Accelerate would otherwise fill in 1.0 for it
        os.environ.setdefault("ACCELERATE_GRADIENT_CLIPPING", str(cfg.train.max_grad_norm))
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(cfg.train.mixed_precision),
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        cpu=not torch.cuda.is_available(),
        log_with=trackers(cfg) or None,
        project_dir=str(out),
    )
    check_sharding(accelerator, cfg)
    lock = RunLock(out)
    if accelerator.is_main_process:
        lock.acquire()
    try:
        set_seed(cfg.train.seed)
        run = build(cfg, accelerator)
        run.on_eval = on_eval
        state = resume(run)
        start_trackers(accelerator, cfg, out)
        if state.step == 0 and run.eval_splits and cfg.eval.before_training:
            metrics = validate(run)
            record_eval(run, state, metrics)
            report_eval(run, state, metrics)
        bar = TrainProgress(cfg.train.max_steps, state.step, enabled=progress and run.main)
        budget = Budget(parse_duration(cfg.train.time_budget or "") or None, t_start, _checkpoint_bytes(run.model))
        with StopSignals(announce=run.main) as stop, bar:
            outcome = fit(run, state, stop, bar, budget)
        if outcome in ("interrupted", "budget") and state.step > 0 and not has_checkpoint(out, state.step):
            checkpoint(run, state)
        if outcome == "interrupted":
            raise WhisperftError(
                f"interrupted at step {state.step}; checkpoint saved. Run the same command again to resume"
            )
        return finish(run, state, outcome == "early", t_start, out_of_time=outcome == "budget")
    finally:
        lock.release()
        accelerator.end_training()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def check_sharding(accelerator: Accelerator, cfg: Config) -> None:
    """Refuse an accelerate config that asks for FSDP or DeepSpeed where Accelerate will not shard: it turns
    them on only for GPU-type devices (accelerate/state.py), so on a CPU the run would silently train
    unsharded, every process holding the whole model. LoRA is refused under sharding: its trainable state
    is small, and its merged save reads the whole model. Raises UsageError (exit 2)."""
    for env, name, kind in (
        ("ACCELERATE_USE_FSDP", "FSDP", DistributedType.FSDP),
        ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed", DistributedType.DEEPSPEED),
    ):
        if os.environ.get(env, "false").lower() == "true" and accelerator.distributed_type != kind:
            raise UsageError(
                f"the accelerate config asks for {name}, but Accelerate runs it only on CUDA GPUs and this run "
                f"is {accelerator.distributed_type.value} on {accelerator.device}; launch without the "
                f"--config_file (or with torchrun) to train unsharded here"
            )
    if cfg.train.method == "lora" and accelerator.distributed_type in SHARDED:
        raise UsageError("train.method: lora trains too few weights to need FSDP or DeepSpeed; launch it multi-GPU")


def _mixed_precision(requested: str) -> str:
    if requested == "fp16" and not torch.cuda.is_available():
        logger.warning("mixed_precision fp16 needs a CUDA GPU; training in fp32 on the CPU instead")
        return "no"
    if requested == "bf16" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise UsageError("train.mixed_precision: this GPU does not support bf16; use fp16")
    return requested


def resume(run: Setup) -> TrainState:
    """The state to start from: the newest complete checkpoint, or a fresh run in an unused folder."""
    out = run.out
    restored = restore_checkpoint(run.accelerator, out)
    if restored is not None:
        ckpt, state = restored
        if run.main:
            logger.info("resuming from %s (step %d)", ckpt, state.step)
            restart_log(out, state.history)  # steps after the checkpoint are trained, and logged, again
    else:
        state = TrainState()
        if run.main and (out / "final").exists():
            raise UsageError(f"{out} already holds a finished run (final/); choose another train.output_dir")
    if run.main:
        # refuse now rather than after hours of steps: a checkpoint holds weights and optimizer moments
        check_free_space(out, _checkpoint_bytes(run.model), "checkpoints")
        out.mkdir(parents=True, exist_ok=True)
        run.cfg.save(out / "config.yaml")
    return state


def fit(run: Setup, state: TrainState, stop: StopSignals, bar: TrainProgress, budget: Budget) -> str:
    """Optimizer steps until max_steps ("done"), early stopping ("early"), a stop signal ("interrupted")
    or the end of the time budget ("budget")."""
    tcfg = run.cfg.train
    meter = LossMeter()
    bad_in_row = 0
    mark = time.perf_counter()
    run.model.train()
    while state.step < tcfg.max_steps:  # a run resumed from its last checkpoint goes straight to finish()
        consumed = state.batches_in_epoch
        for batch in epoch_batches(run, state):
            consumed += 1
            loss, finite, stopping, out_of_time = train_step(run, batch, stop.requested, budget.exhausted(), meter)
            if not run.accelerator.sync_gradients:
                continue
            state.batches_in_epoch = consumed
            if not finite:
                bad_in_row += 1
                skip_step(run, state, bad_in_row)
                continue
            bad_in_row = 0
            if not run.accelerator.optimizer_step_was_skipped:
                run.scheduler.step()
            state.step += 1
            budget.stepped(time.perf_counter() - mark)
            log_step(run, state, meter, bar, loss)
            last = state.step >= tcfg.max_steps
            early = False
            if run.eval_splits and (state.step % tcfg.eval_steps == 0 or last):
                t0 = time.perf_counter()
                early = evaluate_and_track(run, state, bar)
                budget.evaluated(time.perf_counter() - t0)
            if state.step % tcfg.save_steps == 0 or last or early:
                t0 = time.perf_counter()
                checkpoint(run, state)
                budget.saved(time.perf_counter() - t0)
            if last or early:
                return "early" if early else "done"
            if stopping:
                return "interrupted"
            if out_of_time:
                return "budget"
            mark = time.perf_counter()
        state.epoch += 1
        state.batches_in_epoch = 0
    return "done"


def epoch_batches(run: Setup, state: TrainState) -> Any:
    """This epoch's loader, fast-forwarded past the micro-batches a resumed run already trained on."""
    skip = state.batches_in_epoch
    loader = run.accelerator.skip_first_batches(run.loader, skip) if skip else run.loader
    # Accelerate's loaders call sampler.set_epoch(their own counter) when iterated: set both
    loader.set_epoch(state.epoch)
    run.sampler.set_epoch(state.epoch)
    return loader


def train_step(
    run: Setup, batch: dict[str, torch.Tensor], stop_requested: bool, out_of_time: bool, meter: LossMeter
) -> tuple:
    """One micro-batch: forward, backward and, at the end of an accumulation, the clipped optimizer step.

    Every process learns whether any loss was non-finite (then all skip the step), whether any
    process was asked to stop and whether any ran out of its time budget, so that all stop at the
    same step. Returns (loss, finite, stopping, out_of_time).
    """
    acc = run.accelerator
    deepspeed = acc.distributed_type == DistributedType.DEEPSPEED
    if deepspeed:  # DeepSpeed holds the weights in bf16/fp16 and applies no autocast: the features must match
        dtype = next(run.model.parameters()).dtype
        batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}
    with acc.accumulate(run.model):
        loss = run.model(**batch).loss
        own = [float(torch.isfinite(loss.detach())), float(stop_requested), float(out_of_time)]
        flags = acc.gather(torch.tensor(own, device=loss.device).reshape(1, 3)).reshape(-1, 3)
        finite, stopping, out_of_time = bool(flags[:, 0].all()), bool(flags[:, 1].any()), bool(flags[:, 2].any())
        if deepspeed and not finite:  # its engine steps inside backward: a step cannot be skipped
            raise WhisperftError(
                "non-finite loss under DeepSpeed, which cannot skip a step; lower train.learning_rate or check the "
                f"data (the last checkpoint is in {run.out / 'checkpoints'})"
            )
        if finite:
            acc.backward(loss)
            meter.add(float(loss.detach()))
        if acc.sync_gradients and finite and run.cfg.train.max_grad_norm > 0:
            norm = acc.clip_grad_norm_(run.model.parameters(), run.cfg.train.max_grad_norm)
            finite = norm is None or bool(torch.isfinite(torch.as_tensor(norm)))
            if deepspeed and not finite:
                raise WhisperftError(
                    "non-finite gradient under DeepSpeed, which has already stepped; lower "
                    "train.learning_rate or use bf16"
                )
        if finite:
            run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach()), finite, stopping, out_of_time


def skip_step(run: Setup, state: TrainState, bad_in_row: int) -> None:
    """Count a step skipped for a non-finite loss or gradient; stop after too many in a row."""
    state.skipped_steps += 1
    logger.warning("non-finite loss at step %d: step skipped (%d in a row)", state.step + 1, bad_in_row)
    if bad_in_row >= run.cfg.train.max_bad_steps:
        raise WhisperftError(
            f"{bad_in_row} non-finite losses in a row; stopping. The last good checkpoint is in "
            f"{run.out / 'checkpoints'}; lower train.learning_rate or check the data"
        )


def log_step(run: Setup, state: TrainState, meter: LossMeter, bar: TrainProgress, loss: float) -> None:
    """Every ``logging_steps``: a train_log.jsonl record; every step: the progress bar."""
    every = run.cfg.train.logging_steps
    lr = run.scheduler.get_last_lr()[0]
    if every and state.step % every == 0 and meter.count:
        rec = meter.record(state.step, lr, every)
        state.history.append(rec)
        if run.main:
            append_log(run.out, rec)
        run.accelerator.log({"train/loss": rec["loss"], "train/learning_rate": lr}, step=state.step)
    bar.update(state.step, loss=loss, lr=lr)


def evaluate_and_track(run: Setup, state: TrainState, bar: TrainProgress) -> bool:
    """Validation WER now; save ``best/`` on improvement. Returns True when early stopping triggers."""
    metrics = validate(run)
    record_eval(run, state, metrics)
    wer = metrics["wer"]  # None when the references have no words: no improvement to record
    if run.main:
        bar.note(f"step {state.step}: eval WER " + ("n/a" if wer is None else f"{wer:.3f}"))
    improved = wer is not None and (state.best_wer is None or wer < state.best_wer)
    if improved:
        state.best_wer, state.best_step = wer, state.step
        state.evals_without_improvement = 0
        save_weights(run.accelerator, run.model, run.processor, run.cfg, run.out / "best", sharded=run.sharded)
    else:
        state.evals_without_improvement += 1
    report_eval(run, state, metrics)  # after best/ is saved: a sweep's scheduler may end the process here
    patience = run.cfg.train.early_stopping_patience
    return not improved and bool(patience) and state.evals_without_improvement >= patience


def record_eval(run: Setup, state: TrainState, metrics: dict[str, Any]) -> None:
    """A validation result into the history, train_log.jsonl and the trackers."""
    rec = {"step": state.step, **{f"eval_{k}": v for k, v in metrics.items()}}
    state.history.append(rec)
    keys = [k for k in metrics if (k in ("wer", "cer") or k.startswith(("wer_", "cer_"))) and metrics[k] is not None]
    run.accelerator.log({f"eval/{k}": rec[f"eval_{k}"] for k in keys}, step=state.step)
    if run.main:
        append_log(run.out, rec)


def report_eval(run: Setup, state: TrainState, metrics: dict[str, Any]) -> None:
    """Tell ``train``'s ``on_eval`` (a sweep's report to its scheduler) on the main process."""
    if run.main and run.on_eval is not None:
        run.on_eval(state.step, metrics)


def validate(run: Setup) -> dict[str, Any]:
    """Generation-based WER on the validation split of every source; each process decodes its share, and
    all are scored together. With several sources (data.mix), ``wer``/``cer`` are over all of them and
    ``wer_NAME``/``cer_NAME`` per source."""
    cfg, acc = run.cfg, run.accelerator
    ids: list[str] = []
    refs: list[str] = []
    hyps: list[Decoded] = []
    per_source: dict[str, Any] = {}
    for name, split in run.eval_splits.items():
        n = len(split) if cfg.data.max_eval_samples is None else min(len(split), cfg.data.max_eval_samples)
        decoded = decode_split(
            acc.unwrap_model(run.model),
            run.processor.tokenizer,
            split,
            prompt_token(cfg),
            batch_size=cfg.eval.batch_size,
            num_beams=cfg.eval.num_beams,
            max_new_tokens=cfg.eval.max_new_tokens,
            indices=eval_indices(n, acc.process_index, acc.num_processes, run.sharded),
            n_frames=run.n_frames,
            synced=run.sharded,
        )
        gathered = dict(gather_object(list(decoded.items())))
        texts = [gathered[i] for i in range(n)]
        per_source[name], _ = score(split.ids[:n], split.texts[:n], [d.text for d in texts], cfg.language)
        ids += [f"{name}/{i}" for i in split.ids[:n]]
        refs += split.texts[:n]
        hyps += texts
    metrics, _ = score(ids, refs, [d.text for d in hyps], cfg.language)
    metrics.update(stop_counts(hyps))  # a model that loops before it knows the language
    if len(per_source) > 1:
        for name, m in per_source.items():
            metrics.update({f"wer_{name}": m["wer"], f"cer_{name}": m["cer"]})
    return metrics


def eval_indices(n: int, rank: int, processes: int, equal: bool) -> list[int]:
    """This process's share of ``n`` rows: every ``processes``-th from ``rank``. ``equal``: padded with
    a repeat of its last row so all processes decode the same number of batches (a sharded model's
    forward passes are collective); the repeat decodes to the same text and is gathered once."""
    own = list(range(rank, n, processes))
    if equal and n:
        own += [own[-1] if own else 0] * (-(-n // processes) - len(own))
    return own


def checkpoint(run: Setup, state: TrainState) -> None:
    need = _checkpoint_bytes(run.model)
    save_checkpoint(run.accelerator, run.out, state, need, run.cfg.train.save_total_limit)


def finish(
    run: Setup, state: TrainState, stopped_early: bool, t_start: float, out_of_time: bool = False
) -> TrainResult:
    """Write ``final/``: the best model by validation WER when there was evaluation, else the last weights.
    After a time-budget stop too: final/ then holds the best so far, and the same command continues."""
    out, final = run.out, run.out / "final"
    metrics: dict[str, Any] = {}
    # the main process decides (it wrote best/), and tells the others: saving the last weights is collective
    from_best = [state.best_step is not None and (out / "best").is_dir()]
    if run.accelerator.num_processes > 1:
        broadcast_object_list(from_best)
    from_best = from_best[0]
    if not from_best:
        save_weights(run.accelerator, run.model, run.processor, run.cfg, final, sharded=run.sharded)
    if run.main:
        if from_best:
            copy_model(out / "best", final)
            source = f"best (step {state.best_step})"
        else:
            source = f"last (step {state.step})"
        metrics = {
            "steps": state.step,
            "best_wer": state.best_wer,
            "best_step": state.best_step,
            "final_from": source,
            "stopped_early": stopped_early,
            "stopped_by_time_budget": out_of_time,
            "skipped_steps": state.skipped_steps,
            "train_seconds": time.perf_counter() - t_start,
            "history": state.history,
        }
        atomic_write_json(final / "metrics.json", metrics)
        run.cfg.save(final / "config.yaml")
        write_card(run.cfg, state, out, final, metrics["train_seconds"])
        mark_complete(final)
    run.accelerator.wait_for_everyone()
    seconds = time.perf_counter() - t_start
    return TrainResult(
        out, final, state.step, state.best_wer, state.best_step, stopped_early, seconds, metrics, out_of_time
    )


def _checkpoint_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) * CHECKPOINT_BYTES_PER_WEIGHT_BYTE
