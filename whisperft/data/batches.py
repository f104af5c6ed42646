"""Training examples from a feature store: one clip per example, a seeded epoch order, and the collator.

A batch is ``input_features`` (B, n_mels, frames), the padded log-mel windows Whisper's feature
extractor would give, and ``labels`` (B, T) with -100 where there is no token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from whisperft.data.store import Split
from whisperft.features import FRAMES_PER_SECOND, N_FRAMES, pad_features

IGNORE_INDEX = -100  # label positions the loss skips


def fitting_rows(split: Split, max_frames: int) -> np.ndarray:
    """Clips whose speech fits the encoder window; longer ones are left out (their text would be cut)."""
    return np.flatnonzero(np.round(split.duration * FRAMES_PER_SECOND) <= max_frames)


ClipFrames = Callable[[int, int], tuple[np.ndarray, float]]  # (clip, epoch) -> (frames, pad value)


class StoredFrames:
    """A clip's frames as prepare stored them (no augmentation). A class, not a closure, so that
    DataLoader workers started by spawn or forkserver can receive it."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __call__(self, clip: int, epoch: int) -> tuple[np.ndarray, float]:
        return np.array(self.split.frames(clip)), float(self.split.pad_value[clip])


class StoreDataset(Dataset):
    """Training examples from a store split, one clip each: frames, pad value, and full labels.

    Keys are ``epoch * len + index`` (``EpochSampler``), so an augmented clip can be drawn
    differently in each epoch and identically in a resumed run.
    """

    def __init__(
        self, split: Split, prefix: list[int], eot: int, max_frames: int = N_FRAMES, clip: ClipFrames | None = None
    ) -> None:
        self.split = split
        self.prefix = list(prefix)
        self.eot = int(eot)
        self.rows = fitting_rows(split, max_frames)
        self.clip = clip or StoredFrames(split)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int) -> dict[str, Any]:
        epoch, idx = divmod(key, len(self.rows))
        i = int(self.rows[idx])
        labels = self.prefix + self.split.labels(i).tolist() + [self.eot]
        frames, pad = self.clip(i, epoch)
        return {"frames": frames, "pad": pad, "labels": labels}


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
        labels = torch.full((len(seqs), max(len(s) for s in seqs)), IGNORE_INDEX, dtype=torch.long)
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

    def __iter__(self) -> Iterator[int]:
        """This epoch's order, as keys ``epoch * n + index`` (datasets take the index modulo n)."""
        g = torch.Generator()
        g.manual_seed(self.seed * 100_003 + self.epoch)
        base = self.epoch * self.n
        return iter((base + torch.randperm(self.n, generator=g)).tolist())
