"""``train.batch_size: auto``: the search for the largest batch that fits, and the accumulation that keeps
the effective batch.

The search doubles, then bisects, over a ``fits(batch)`` test: on a GPU one real forward and backward pass
(``cuda_fits``), on a CPU the analytic estimate of ``train/plan``. ``train/setup`` runs it before the loader
is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from whisperft.errors import UsageError


def largest_fitting(fits: Callable[[int], bool], cap: int) -> int:
    """The largest batch in [1, cap] for which ``fits`` holds (0 if none): doubling, then bisection.

    ``fits`` may be a real step on the device; it is assumed monotone (what fits at b fits below b).
    """
    good, bad, b = 0, cap + 1, 1
    while b <= cap:
        if not fits(b):
            bad = b
            break
        good = b
        if b == cap:
            return cap
        b = min(2 * b, cap)
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def split_effective(effective: int, processes: int, largest: int) -> tuple[int, int]:
    """(batch, accumulation) with batch x accumulation x processes == effective and batch <= largest:
    the largest such batch, so the fewest accumulation steps."""
    if effective % processes:
        raise UsageError(
            f"train.effective_batch_size {effective} is not a multiple of the {processes} processes; "
            f"use {effective + processes - effective % processes}"
        )
    per_process = effective // processes
    batch = max(d for d in range(1, min(largest, per_process) + 1) if per_process % d == 0)
    return batch, per_process // batch


def cuda_fits(model: Any, autocast: Any, n_mels: int, frames: int, tokens: int, reserve: int, limit: int) -> Callable:
    """A trial for ``largest_fitting``: one forward and backward pass of a full-size batch on the GPU.
    It fits when it ran without running out of memory and its peak plus ``reserve`` (the optimizer state,
    created later) stays under ``limit``."""

    def fits(batch: int) -> bool:
        device = next(model.parameters()).device
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        was_training = model.training
        model.train()  # checkpointing, dropout and SpecAugment act only in training mode
        try:
            x = torch.zeros(batch, n_mels, frames, device=device)
            y = torch.full((batch, tokens), 50257, device=device, dtype=torch.long)
            with autocast():
                loss = model(input_features=x, labels=y).loss
            loss.backward()
            peak = torch.cuda.max_memory_allocated(device)
        except torch.OutOfMemoryError:
            return False
        finally:
            model.zero_grad(set_to_none=True)
            model.train(was_training)
            torch.cuda.empty_cache()
        return peak + reserve <= limit

    return fits
