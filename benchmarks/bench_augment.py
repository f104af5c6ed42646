"""Cost of waveform augmentation: the audio track's size next to the log-mel store, and training
throughput with augmented clips (audio decoded, augmented and featurized on the fly) against the
stored frames, on the same model and batches."""

from __future__ import annotations

import shutil
import time

import torch

from benchmarks.common import DATA, cv_corpus, emit, setup

STEPS, BATCH, CONTEXT_S = 8, 4, 8.0
AUGMENT = {"speed_prob": 0.5, "pitch_prob": 0.5, "gain_prob": 0.5, "noise_prob": 0.5}


def dir_bytes(path: object) -> int:
    from pathlib import Path

    return sum(p.stat().st_size for p in Path(str(path)).rglob("*") if p.is_file())


def steps_per_second(store_dir: str, model_path: str, augmented: bool) -> tuple[float, float]:
    """(training steps/s, examples/s of the data path alone), batches built inside the timed loop."""
    from whisperft.data.augment import Augmenter, AugmentSettings, ClipAugment
    from whisperft.data.batches import StoreDataset, WhisperCollator
    from whisperft.data.store import FeatureStore
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import apply_audio_context, context_frames, decoder_prefix

    torch.manual_seed(0)
    model = load_model(model_path)
    apply_audio_context(model, CONTEXT_S)
    frames = context_frames(model.config)
    tok = load_processor(model_path).tokenizer
    split = FeatureStore(store_dir).split("train")
    clip = ClipAugment(split, Augmenter(AugmentSettings(**AUGMENT)), 0, frames * 160) if augmented else None
    ds = StoreDataset(split, decoder_prefix(tok, model.config, "sv", "transcribe"), tok.eos_token_id, frames, clip)
    collate = WhisperCollator(model.config.decoder_start_token_id, frames)
    t0 = time.perf_counter()
    for k in range(64):
        ds[k]
    data_rate = 64 / (time.perf_counter() - t0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
    model.train()
    t0 = time.perf_counter()
    for step in range(STEPS):
        batch = collate([ds[step * BATCH + j] for j in range(BATCH)])
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return STEPS / (time.perf_counter() - t0), data_rate


def main() -> None:
    setup()
    from whisperft.data.store import FeatureStore
    from whisperft.models.registry import resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    src = cv_corpus()
    sizes, stores = {}, {}
    for audio in (None, "opus", "flac"):
        out = DATA / f"store-audio-{audio}"
        shutil.rmtree(out, ignore_errors=True)
        prepare(PrepareRequest(str(src), "sv", "bundled:base", out, num_proc=2, validation_fraction=0.5, audio=audio))
        store = FeatureStore(out)
        hours = sum(store.split(s).seconds for s in store.splits) / 3600
        frames = sum((out / s / "frames.f16").stat().st_size for s in store.splits)
        track = sum((out / s / "audio.bin").stat().st_size for s in store.splits if (out / s / "audio.bin").exists())
        sizes[audio] = (dir_bytes(out) / hours / 1e6, track / hours / 1e6, frames / hours / 1e6)
        stores[audio] = str(out)
    model = resolve_model("bundled:base")
    ref_steps, ref_data = steps_per_second(stores[None], model, augmented=False)
    aug_steps, aug_data = steps_per_second(stores["opus"], model, augmented=True)
    emit(
        "augment_cost",
        reference_store_mb_per_hour=round(sizes[None][0], 1),
        opus_store_mb_per_hour=round(sizes["opus"][0], 1),
        opus_audio_track_mb_per_hour=round(sizes["opus"][1], 1),
        flac_audio_track_mb_per_hour=round(sizes["flac"][1], 1),
        reference_train_steps_per_s=round(ref_steps, 3),
        ours_augmented_train_steps_per_s=round(aug_steps, 3),
        ratio=round(aug_steps / ref_steps, 3),
        target="a cost to report (no target)",
        reference_data_examples_per_s=round(ref_data, 1),
        ours_augmented_data_examples_per_s=round(aug_data, 1),
        setting=f"bundled base, {CONTEXT_S:g} s window, batch {BATCH}, {STEPS} steps, num_workers 0, "
        "speed/pitch/gain/noise at p=0.5",
    )


if __name__ == "__main__":
    main()
