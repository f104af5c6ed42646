"""Data mixing (``data.mix``): examples drawn from several prepared stores in fixed proportions.

Each source is prepared on its own (its own store, its own prepare report). A mixed epoch of
``len`` examples holds exactly ``counts[s]`` examples of source ``s``: the weights' shares of
``len``, rounded by largest remainders so that they add up. Each source is walked through seeded
permutations of its own, so no example repeats before its whole source has been seen, and a
small source that is weighted up is cycled. Everything is a function of (seed, epoch), so a
resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset


def exact_counts(weights: list[float], total: int) -> list[int]:
    """``total`` split in proportion to ``weights``: floors, then the largest remainders get one more."""
    w = np.asarray(weights, dtype=np.float64) / float(sum(weights))
    raw = w * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    return counts.tolist()


class MixedDataset(Dataset):
    """Several datasets as one, in exact proportions per epoch. Keys are ``epoch * len + position``
    (``EpochSampler``); each part receives keys ``cycle * len(part) + index`` in the same convention."""

    def __init__(self, parts: list[Any], weights: list[float], seed: int) -> None:
        if len(parts) != len(weights) or not parts:
            raise ValueError("one weight per part")
        self.parts, self.seed = parts, seed
        self.size = sum(len(p) for p in parts)
        self.counts = exact_counts(weights, self.size)
        self._epoch: int | None = None
        self._sources = np.zeros(0, np.int64)
        self._keys = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.size

    def _permutation(self, part: int, cycle: int) -> np.ndarray:
        return np.random.default_rng([self.seed, part, cycle]).permutation(len(self.parts[part]))

    def table(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, key within its part) for every position of ``epoch``."""
        if self._epoch != epoch:
            sources = np.repeat(np.arange(len(self.parts)), self.counts)
            sources = sources[np.random.default_rng([self.seed, epoch, len(self.parts)]).permutation(self.size)]
            keys = np.zeros(self.size, np.int64)
            for s, part in enumerate(self.parts):
                n, c = len(part), self.counts[s]
                picked = []
                pos, end = epoch * c, (epoch + 1) * c  # this epoch's stretch of the part's endless stream
                while pos < end:  # one permutation (cycle) of the part at a time
                    cycle, start = divmod(pos, n)
                    stop = min(n, start + end - pos)
                    picked.append(cycle * n + self._permutation(s, cycle)[start:stop])
                    pos += stop - start
                keys[sources == s] = np.concatenate(picked) if picked else np.zeros(0, np.int64)
            self._epoch, self._sources, self._keys = epoch, sources, keys
        return self._sources, self._keys

    def __getitem__(self, key: int) -> Any:
        epoch, position = divmod(key, self.size)
        sources, keys = self.table(epoch)
        return self.parts[int(sources[position])][int(keys[position])]
