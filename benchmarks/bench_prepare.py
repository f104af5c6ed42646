"""Claim: whisperft prepare processes >=3x the audio-seconds per second of the blog recipe
(cast_column(Audio(16k)) + map(prepare_dataset, num_proc=2) with WhisperFeatureExtractor)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import DATA, best_of, cv_corpus, emit, setup


def _decode(path: str) -> dict:
    # what Audio(sampling_rate=16000) did before datasets 4 (soundfile + resampling); torchcodec, its
    # decoder since datasets 4, needs CUDA libraries and fails on this machine
    from whisperft.audio import decode_audio

    return {"array": decode_audio(path), "sampling_rate": 16000}


def recipe(src: Path, model_path: str) -> float:
    import datasets
    from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

    fe = WhisperFeatureExtractor(feature_size=80)
    tok = WhisperTokenizerFast.from_pretrained(model_path)

    def prepare_dataset(batch: dict) -> dict:
        audio = _decode(batch["audio"])
        batch["input_features"] = fe(audio["array"], sampling_rate=audio["sampling_rate"]).input_features[0]
        batch["labels"] = tok(batch["sentence"]).input_ids
        return batch

    with tempfile.TemporaryDirectory() as tmp:
        ds = datasets.load_dataset("csv", data_files=str(src / "train.tsv"), delimiter="\t", split="train",
                                   cache_dir=tmp)  # fmt: skip
        ds = ds.map(lambda b: {"audio": str(src / "clips" / b["path"])})
        ds = ds.map(prepare_dataset, remove_columns=ds.column_names, num_proc=2,
                    cache_file_name=str(Path(tmp) / "prepared.arrow"))  # fmt: skip
        return len(ds)


def main() -> None:
    setup()
    from whisperft.models.registry import resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    src = cv_corpus()
    path = resolve_model("bundled:base")
    seconds = sum(float(line.split("\t")[3]) for line in (src / "train.tsv").read_text().splitlines()[1:])
    out = DATA / "store-prepare-bench"

    def ours() -> int:
        shutil.rmtree(out, ignore_errors=True)
        return sum(r["kept"] for r in prepare(PrepareRequest(str(src), "sv", path, out, num_proc=2)).report.values())

    t_ours, kept = best_of(ours)
    t_ref, n_ref = best_of(lambda: recipe(src, path))
    emit(
        "prepare_speed",
        ours_audio_s_per_s=round(seconds / t_ours, 1),
        recipe_audio_s_per_s=round(seconds / t_ref, 1),
        ratio=round(t_ref / t_ours, 2),
        target=">= 3x",
        clips=kept,
        recipe_clips=n_ref,
        audio_minutes=round(seconds / 60, 1),
    )


if __name__ == "__main__":
    main()
