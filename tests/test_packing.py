"""Packing several clips per encoder window: features, labels with timestamps, and the plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

from tests.helpers import run_cli
from whisperft.audio import SAMPLE_RATE, decode_audio
from whisperft.data.batches import WhisperCollator
from whisperft.data.packing import GAP_FRAMES, PackedDataset, plan_windows
from whisperft.data.store import FeatureStore
from whisperft.features import HOP_LENGTH, N_FRAMES


def _packed(store: Path, tiny_model: Path, fraction: float, window: int = N_FRAMES, budget: int = 448):
    tok = WhisperTokenizerFast.from_pretrained(tiny_model)
    split = FeatureStore(store).split("train")
    ids = tok.convert_tokens_to_ids(["<|sv|>", "<|transcribe|>", "<|notimestamps|>", "<|0.00|>"])
    ds = PackedDataset(split, np.arange(len(split)), ids[:3], ids[2], ids[3], tok.eos_token_id, window, budget,
                       fraction, seed=3)  # fmt: skip
    return ds, split, tok


def test_packed_features_are_whisper_features_of_the_joined_audio(
    store: Path, tiny_model: Path, cv_folder: Path
) -> None:
    ds, split, _ = _packed(store, tiny_model, 0.5)
    assert ds.plan.clips == len(split) and ds.plan.clips_per_window >= 4
    w = max(range(len(ds)), key=lambda k: len(ds.plan.windows[k]))
    clips = ds.plan.windows[w]
    item = ds[w]
    ours = WhisperCollator(50258)([item])["input_features"][0].numpy()
    # the reference: Whisper's own feature extractor on the clips' audio laid out at the same offsets
    audio = np.zeros(N_FRAMES * HOP_LENGTH, np.float32)
    starts, pos = [], 0
    for i in clips:
        wave = decode_audio(cv_folder / "clips" / split.ids[i])
        starts.append(pos)
        audio[pos * HOP_LENGTH : pos * HOP_LENGTH + len(wave)] = wave
        span = int(split.n_frames[i]) + GAP_FRAMES
        pos += span + span % 2
    ref = WhisperFeatureExtractor(feature_size=80)(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")
    ref = ref["input_features"][0]
    junction = np.zeros(N_FRAMES, bool)
    for s in starts[1:]:
        junction[s - 2 : s + 2] = True  # STFT frames that straddle two clips: reflection padding vs the gap
    assert np.abs(ours[:, ~junction] - ref[:, ~junction]).max() < 4e-3  # float16 storage
    assert junction.sum() == 4 * (len(clips) - 1)


def test_packed_labels_carry_timestamps_or_joined_text(store: Path, tiny_model: Path) -> None:
    ds, split, tok = _packed(store, tiny_model, 0.5, window=900)
    assert ds.with_timestamps.sum() == round(len(ds) / 2) and len(ds) >= 4
    assert ds.with_timestamps.any() and not ds.with_timestamps.all()
    for w in range(len(ds)):
        labels = ds[w]["labels"]
        clips = ds.plan.windows[w]
        texts = " ".join(split.texts[i] for i in clips)
        assert tok.decode(labels, skip_special_tokens=True).strip() == texts
        toks = tok.convert_ids_to_tokens(labels)
        assert toks[:2] == ["<|sv|>", "<|transcribe|>"] and toks[-1] == "<|endoftext|>"
        stamps = [float(t[2:-2]) for t in toks if t.startswith("<|") and t[2:3].isdigit()]
        if ds.with_timestamps[w]:
            assert "<|notimestamps|>" not in toks
            assert len(stamps) == 2 * len(clips) and stamps[0] == 0.0
            assert stamps == sorted(stamps) and stamps[-1] <= 9.0
            # each clip's end stamp is its start plus its duration
            for k, i in enumerate(clips):
                assert stamps[2 * k + 1] - stamps[2 * k] == pytest.approx(float(split.duration[i]), abs=0.02)
        else:
            assert toks[2] == "<|notimestamps|>" and not stamps


def test_windows_respect_frame_and_label_budgets(store: Path, tiny_model: Path) -> None:
    ds, split, _ = _packed(store, tiny_model, 1.0, window=600, budget=40)
    batch = WhisperCollator(50258, 600)([ds[i] for i in range(len(ds))])
    assert batch["input_features"].shape == (len(ds), 80, 600)
    assert max(len(ds[i]["labels"]) for i in range(len(ds))) <= 40
    assert sorted(i for w in ds.plan.windows for i in w) == list(range(len(split)))
    # a clip as long as prepare allows (prefix + text + eot = the decoder's limit) has no room for timestamps
    limit = int(split.n_labels.max()) + 4
    ds, split, tok = _packed(store, tiny_model, 1.0, window=600, budget=limit)
    longest = int(np.argmax(split.n_labels))
    w = next(k for k, clips in enumerate(ds.plan.windows) if longest in clips)
    labels = [ds[k]["labels"] for k in range(len(ds))]
    assert max(len(x) for x in labels) <= limit
    assert ds.plan.windows[w] == [longest] and "<|notimestamps|>" in tok.convert_ids_to_tokens(labels[w])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(20, 3000), st.integers(1, 60)), min_size=1, max_size=80),
    st.integers(0, 2**16),
)
def test_plan_places_every_clip_once_within_budgets(clips: list[tuple[int, int]], seed: int) -> None:
    frames = np.array([f for f, _ in clips])
    labels = np.array([n for _, n in clips])
    plan = plan_windows(frames, labels, np.arange(len(clips)), N_FRAMES, 200, seed)
    assert sorted(i for w in plan.windows for i in w) == list(range(len(clips)))
    for w in plan.windows:
        slots = [int(frames[i]) + GAP_FRAMES + (int(frames[i]) + GAP_FRAMES) % 2 for i in w]
        assert sum(slots[:-1]) + frames[w[-1]] <= N_FRAMES
        assert sum(int(labels[i]) + 2 for i in w) <= 200
    assert plan == plan_windows(frames, labels, np.arange(len(clips)), N_FRAMES, 200, seed)


def test_train_with_packing_through_the_cli(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "pack.yaml"
    cfg.write_text(
        f"model: {tiny_model}\nlanguage: sv\n"
        f"data: {{store: {store}, pack: true, num_workers: 0, eval_split: validation}}\n"
        f"train: {{output_dir: {tmp_path / 'run'}, max_steps: 3, batch_size: 2, eval_steps: 3, save_steps: 3}}\n"
    )
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "packed 16 clips into" in r.stderr
    assert (tmp_path / "run" / "final" / "_COMPLETE").is_file()
