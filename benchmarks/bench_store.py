"""Claim: the feature store takes >=10x fewer bytes per hour of audio than the recipe's padded float32
store, with no change in transcripts beyond noise."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import DATA, cv_corpus, emit, setup


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    setup()
    import datasets
    from transformers import WhisperFeatureExtractor

    from whisperft.audio import decode_audio
    from whisperft.data.store import FeatureStore
    from whisperft.features import pad_features
    from whisperft.metrics import score
    from whisperft.models.decode import generate_texts
    from whisperft.models.registry import load_model, load_processor, resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    src = cv_corpus()
    out = DATA / "store-bench"
    shutil.rmtree(out, ignore_errors=True)
    prepare(PrepareRequest(str(src), "sv", "bundled:base", out, num_proc=2, validation_fraction=0.5))
    store = FeatureStore(out)
    ours = sum(dir_bytes(out / s) for s in store.splits)
    hours = sum(store.split(s).seconds for s in store.splits) / 3600
    # the recipe: padded 80x3000 float32 input_features plus labels, in a datasets Arrow store
    fe = WhisperFeatureExtractor(feature_size=80)
    path = resolve_model("bundled:base")
    tok = load_processor(path).tokenizer
    clips = sorted((src / "clips").glob("*.mp3"))[:40]
    audio = [decode_audio(c) for c in clips]
    recipe = datasets.Dataset.from_dict(
        {
            "input_features": [fe(a, sampling_rate=16000).input_features[0] for a in audio],
            "labels": [tok("hej").input_ids for _ in audio],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        recipe.save_to_disk(tmp)
        per_clip = dir_bytes(Path(tmp)) / len(clips)
    n_clips = sum(len(store.split(s)) for s in store.splits)
    recipe_bytes = per_clip * n_clips
    ratio = recipe_bytes / ours

    # transcripts from stored float16 frames vs exact float32 features, with real weights
    model = load_model(path)
    split = store.split("train")
    idx = list(range(min(24, len(split))))
    stored = pad_features([(split.frames(i), float(split.pad_value[i])) for i in idx])
    exact_src = {c.name: c for c in (src / "clips").glob("*.mp3")}
    exact = np.stack([fe(decode_audio(exact_src[split.ids[i]]), sampling_rate=16000).input_features[0] for i in idx])
    import torch

    a = generate_texts(model, tok, stored, "sv", max_new_tokens=64)
    b = generate_texts(model, tok, torch.from_numpy(exact), "sv", max_new_tokens=64)
    diff, _ = score([str(i) for i in idx], b, a, "sv")
    max_abs = float((stored - torch.from_numpy(exact)).abs().max())
    emit(
        "store_size",
        ours_mb_per_hour=round(ours / hours / 1e6, 1),
        recipe_mb_per_hour=round(recipe_bytes / hours / 1e6, 1),
        ratio=round(ratio, 1),
        target=">= 10x",
        clips=n_clips,
        transcript_wer_fp16_vs_fp32=round(diff["wer"], 4),
        identical_transcripts=f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(a)}",
        max_feature_diff=round(max_abs, 4),
    )


if __name__ == "__main__":
    main()
