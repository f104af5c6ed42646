"""Packing: several short utterances in one encoder window, with timestamp tokens.

The encoder always sees a full window (30 s, or ``model.audio_context_s``), so a
5 s clip alone wastes most of its compute on padding. ``data.pack: true`` places
clips one after another in a window, ``GAP_FRAMES`` apart, and joins their labels.

Features are packed in log-mel space, which gives what Whisper's feature extractor
computes on the concatenated audio: Whisper floors every frame at (window peak - 8)
and the padding sits at that floor, so a window's floor is the largest of its clips'
pad values, and each clip's frames are raised to it. Only the two STFT frames at the
start of each clip differ (they see the gap instead of Whisper's reflection padding).

Labels of a packed window take one of Whisper's two training forms (chosen per
window, ``data.timestamp_fraction`` of them with timestamps)::

    [lang] [task] <|0.00|> text1 <|2.44|> <|2.64|> text2 <|5.10|> <|endoftext|>
    [lang] [task] <|notimestamps|> text1 text2 <|endoftext|>

so fine-tuning keeps the timestamp ability that transcribe's subtitles rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from whisperft.data.batches import ClipFrames, StoredFrames
from whisperft.data.store import Split
from whisperft.features import TIME_PRECISION

FRAMES_PER_TOKEN = 2  # mel frames are 10 ms, so clip starts are aligned to even frames
GAP_FRAMES = 10  # 0.1 s of silence between packed clips
SEARCH_WINDOWS = 64  # first-fit looks back this many open windows: O(n) planning, tight packing


@dataclass(frozen=True)
class PackPlan:
    """Which clips go in which window: ``windows[w]`` lists store row indices, in time order."""

    windows: list[list[int]]
    clips: int
    fill: float  # fraction of the window's frames that hold clips

    @property
    def clips_per_window(self) -> float:
        return self.clips / max(1, len(self.windows))


def _slot(n_frames: int) -> int:
    """Frames a clip occupies, with its trailing gap, rounded up to a timestamp step."""
    span = n_frames + GAP_FRAMES
    return span + (-span) % FRAMES_PER_TOKEN


def plan_windows(
    n_frames: np.ndarray,
    n_labels: np.ndarray,
    rows: np.ndarray,
    window_frames: int,
    label_budget: int,
    seed: int,
) -> PackPlan:
    """Pack ``rows`` (store indices) into windows of ``window_frames`` frames and ``label_budget`` label tokens.

    Each clip costs its frames plus a gap, and its text tokens plus two timestamp
    tokens. Clips are taken in a seeded random order and placed first-fit, so a
    window mixes lengths and the plan is the same on every run with the same seed.
    """
    order = np.random.default_rng(seed).permutation(np.asarray(rows))
    windows: list[list[int]] = []
    frames_left: list[int] = []
    tokens_left: list[int] = []
    used = 0
    for i in order.tolist():
        need_f, need_t = _slot(int(n_frames[i])), int(n_labels[i]) + 2
        first = max(0, len(windows) - SEARCH_WINDOWS)
        for w in range(first, len(windows)):
            # only the clip's frames must fit: the last clip's gap may run past the window's end
            if frames_left[w] >= int(n_frames[i]) and tokens_left[w] >= need_t:
                windows[w].append(i)
                frames_left[w] -= need_f
                tokens_left[w] -= need_t
                break
        else:
            windows.append([i])
            frames_left.append(window_frames - need_f)
            tokens_left.append(label_budget - need_t)
        used += int(n_frames[i])
    fill = used / max(1, len(windows) * window_frames)
    return PackPlan(windows, len(order), fill)


class PackedDataset(Dataset):
    """Training windows of several clips each, as the collator expects: frames, pad value, labels."""

    def __init__(
        self,
        split: Split,
        rows: np.ndarray,
        prefix: list[int],
        notimestamps: int,
        timestamp_begin: int,
        eot: int,
        window_frames: int,
        label_budget: int,
        timestamp_fraction: float,
        seed: int,
        clip: ClipFrames | None = None,
    ) -> None:
        self.split = split
        self.clip = clip or StoredFrames(split)  # augmentation may recompute a clip's frames
        self.prefix = [t for t in prefix if t != notimestamps]  # language and task tokens only
        self.notimestamps = int(notimestamps)
        self.timestamp_begin = int(timestamp_begin)
        self.eot = int(eot)
        self.window_frames = window_frames
        self.max_labels = label_budget
        # the prefix, <|notimestamps|> or nothing, and <|endoftext|> share the budget with the clips
        budget = label_budget - len(self.prefix) - 2
        self.plan = plan_windows(split.n_frames, split.n_labels, rows, window_frames, budget, seed)
        # exactly round(fraction * windows) of them, spread at random
        n = len(self.plan.windows)
        self.with_timestamps = np.zeros(n, bool)
        self.with_timestamps[np.random.default_rng(seed + 1).permutation(n)[: round(timestamp_fraction * n)]] = True

    def __len__(self) -> int:
        return len(self.plan.windows)

    def __getitem__(self, key: int) -> dict[str, Any]:
        epoch, idx = divmod(key, len(self.plan.windows))
        clips = self.plan.windows[idx]
        feats = [self.clip(i, epoch) for i in clips]
        floor = max(pad for _, pad in feats)
        offsets, end = [], 0
        for i in clips:
            offsets.append(end)
            end += _slot(int(self.split.n_frames[i]))
        # the collator cuts the window to the encoder's frames (a lone clip may overhang by a frame or two)
        frames = np.full((offsets[-1] + int(self.split.n_frames[clips[-1]]), self.split.n_mels), floor, np.float32)
        for (clip, _), o in zip(feats, offsets, strict=True):
            clip = np.asarray(clip, dtype=np.float32)[: int(len(frames) - o)]
            np.maximum(clip, floor, out=frames[o : o + len(clip)])
        return {"frames": frames, "pad": floor, "labels": self.labels(clips, offsets, bool(self.with_timestamps[idx]))}

    def labels(self, clips: list[int], offsets: list[int], timestamps: bool) -> list[int]:
        """The label sequence for clips starting at ``offsets`` (frames), with or without timestamp tokens.

        A lone clip whose text nearly fills the decoder (prepare allows up to the limit without
        timestamps) has no room for two timestamp tokens; it gets the <|notimestamps|> form.
        """
        texts = sum(int(self.split.n_labels[i]) for i in clips)
        if timestamps and len(self.prefix) + texts + 2 * len(clips) + 1 > self.max_labels:
            timestamps = False
        out = list(self.prefix)
        if not timestamps:
            out.append(self.notimestamps)
        for i, o in zip(clips, offsets, strict=True):
            text = self.split.labels(i).tolist()
            if timestamps:
                start = o // FRAMES_PER_TOKEN
                stop = round((o / 100 + float(self.split.duration[i])) / TIME_PRECISION)
                stop = min(max(stop, start + 1), self.window_frames // FRAMES_PER_TOKEN)
                out += [self.timestamp_begin + start, *text, self.timestamp_begin + stop]
            else:
                out += text
        out.append(self.eot)
        return out
