"""Fine-tuning on real human voices: bundled base on Debian's Asterisk prompts, Spanish and French.

For each language (demo/real_speech.py builds the corpus: one professional voice, 8 kHz telephone
audio, split by prompt text), bundled base is evaluated on the held-out prompts, fine-tuned with
configs/real-es.yaml, and evaluated again; WER and CER, orthographic and normalized. What fine-tuning
forgets is measured on English, before and after: 30 espeak-ng sentences, and alsa-utils' eight
recorded channel names (Front_Center.wav, ...), a real voice. Each variant records its training wall
time and peak memory. Variants (the levers for real, narrow-band, single-speaker data):

- full: every weight trained (configs/real-es.yaml);
- lora: low-rank adapters (r 32, learning rate 1e-3), merged into final/;
- freeze_encoder: the decoder alone learns.

Targets, on the held-out prompts of both languages: normalized WER after fine-tuning at most half of
bundled base's; English WER no more than 3 points worse than before. Part of make bench (slow: one
training of about 10 minutes per variant on 2 cores, and a 5-minute evaluation of each model).

    python -m benchmarks.bench_real_speech                         # es and fr, every variant
    python -m benchmarks.bench_real_speech --langs es --variants full
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

import yaml

from benchmarks.common import DATA, EN, ROOT, cli, converted_test, emit, prepared, setup, test_table

sys.path.insert(0, str(ROOT / "demo"))
import real_speech

VARIANTS = {
    "full": [],
    "lora": ["train.method=lora", "train.learning_rate=1e-3"],
    "freeze_encoder": ["train.freeze_encoder=true"],
}
ALSA = Path("/usr/share/sounds/alsa")
ALSA_CLIPS = ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right",
              "Side_Left", "Side_Right"]  # fmt: skip
METRICS = ("wer", "cer", "wer_normalized", "cer_normalized")
CONFIG = yaml.safe_load((ROOT / "configs" / "real-es.yaml").read_text())


def english_sets(root: Path) -> dict[str, Path]:
    """Two English test sets in Common Voice layout: espeak-ng sentences, and the alsa-utils recordings."""
    from devkit.synth import render_clip

    real_speech.ensure_packages(["alsa-utils"])
    out = {}
    for name in ("espeak", "alsa"):
        folder = root / f"en-{name}"
        out[name] = folder
        if (folder / "test.tsv").is_file():
            continue
        (folder / "clips").mkdir(parents=True, exist_ok=True)
        rows = []
        if name == "espeak":
            for i, text in enumerate(EN):
                clip = f"en_{i:03d}.mp3"
                render_clip(text, folder / "clips" / clip, random.Random(i), lang="en")
                rows.append((clip, text))
        else:
            for clip in ALSA_CLIPS:
                shutil.copyfile(ALSA / f"{clip}.wav", folder / "clips" / f"{clip}.wav")
                rows.append((f"{clip}.wav", clip.replace("_", " ")))
        test_table(folder, rows)
    return out


def ffmpeg_copy(corpus: Path, out: Path) -> Path:
    """The test prompts resampled to 16 kHz by ffmpeg's resampler (float WAV), instead of whisperft's soxr."""
    return converted_test(corpus, out, lambda clip, wav: ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-ar",
                                                          "16000", "-c:a", "pcm_f32le", str(wav)])  # fmt: skip


def scores(model: str, store: Path, out: Path) -> dict[str, float]:
    """WER and CER in percent (orthographic and normalized) of ``model`` on ``store``'s test split; the
    metrics, predictions and ``eval --report`` page in the folder ``out``."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        cli("eval", "--model", model, "--data", str(store), "--split", "test", "--out", str(metrics), "--report")
    values = json.loads(metrics.read_text())
    return {k: round(100 * values[k], 1) for k in METRICS}


def run_language(lang: str, variants: list[str], english: dict[str, Path]) -> dict:
    root = DATA / "real" / lang
    builder = real_speech.build(lang, root / "corpus")
    store = prepared(root / "corpus", lang, root / "store", audio=True)
    unfiltered = prepared(root / "corpus" / "unfiltered", lang, root / "store-unfiltered")
    filters = real_speech.compare(builder, json.loads((unfiltered / "prepare_report.json").read_text()))
    en = {name: prepared(folder, "en", DATA / "real" / f"store-en-{name}") for name, folder in english.items()}

    def measure(model: str, tag: str) -> dict:
        out = {"test": scores(model, store, root / f"{tag}-test")}
        shared = DATA / "real" if tag == "before" else root  # bundled base on English: the same for every language
        out.update({f"en_{name}": scores(model, s, shared / f"{tag}-en-{name}") for name, s in en.items()})
        return out

    result = {"builder": {k: builder[k] for k in ("kept", "minutes", "splits", "skipped")}, "filters": filters,
              "before": measure("bundled:base", "before")}  # fmt: skip
    # 8 kHz -> 16 kHz by ffmpeg instead of soxr: does the resampler change what the model hears?
    resampled = prepared(ffmpeg_copy(root / "corpus", root / "corpus-ffmpeg"), lang, root / "store-ffmpeg")
    result["before"]["test_ffmpeg"] = scores("bundled:base", resampled, root / "before-test-ffmpeg")
    for name in variants:
        run = root / name
        shutil.rmtree(run, ignore_errors=True)
        for stale in root.glob(f"{name}-*"):
            shutil.rmtree(stale)
        seconds, peak_mb = cli("train", "configs/real-es.yaml", f"language={lang}", f"data.store={store}",
                               f"train.output_dir={run}", "--no-progress", *VARIANTS[name], peak=True)  # fmt: skip
        result[name] = {**measure(str(run / "final"), name), "train_s": round(seconds), "peak_mb": round(peak_mb)}
        print(lang, name, result[name], flush=True)
    # variants measured by an earlier run on the same corpus, baseline and training settings
    result["fingerprint"] = {"train": CONFIG["train"], "builder": result["builder"], "before": result["before"]}
    earlier = DATA / "real" / f"result-{lang}.json"
    if earlier.is_file():
        old = json.loads(earlier.read_text())
        if old.get("fingerprint") == result["fingerprint"]:
            result.update({k: v for k, v in old.items() if k in VARIANTS and k not in result})
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--langs", nargs="+", default=list(real_speech.LANGS), choices=real_speech.LANGS)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    setup()
    english = english_sets(DATA / "real")
    train = CONFIG["train"]
    for lang in args.langs:
        r = run_language(lang, args.variants, english)
        before = r["before"]
        fields = {"reference_base_wer_normalized": before["test"]["wer_normalized"]}
        for tag in ("before", *(v for v in VARIANTS if v in r)):
            for test, m in r[tag].items():
                if isinstance(m, dict):
                    fields.update({f"{tag}_{test}_{k}": v for k, v in m.items()})
                else:
                    fields[f"{tag}_{test}"] = m
        full, splits = r.get("full"), r["builder"]["splits"]
        emit(
            f"real_speech_{lang}",
            target="normalized WER after fine-tuning <= half of base's; English WER <= 3 points worse",
            ours_full_wer_normalized=full["test"]["wer_normalized"] if full else None,
            ratio=round(before["test"]["wer_normalized"] / full["test"]["wer_normalized"], 2) if full else None,
            **fields,
            peak_rss_mb=max((r[v]["peak_mb"] for v in VARIANTS if v in r), default=None),
            builder_kept=r["builder"]["kept"],
            builder_minutes=r["builder"]["minutes"],
            builder_skipped=r["builder"]["skipped"],
            filters_builder_vs_prepare=r["filters"],
            setting=f"configs/real-es.yaml (bundled base, {train['max_steps']} steps of {train['batch_size']} packed "
            f"30 s windows, lr {train['learning_rate']:g}) with language={lang}, on {splits['train']['minutes']} "
            f"min of train prompts; test: {splits['test']['clips']} held-out prompts; en_espeak: 30 espeak-ng "
            "sentences; en_alsa: the 8 alsa-utils recordings; test_ffmpeg: the test prompts resampled by ffmpeg; "
            "lora: r 32, lr 1e-3",
        )
        (DATA / "real" / f"result-{lang}.json").write_text(json.dumps(r, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
