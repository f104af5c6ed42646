"""The demo run three ways: full fine-tuning, LoRA, and full fine-tuning with augmentation.

For each: WER on the demo's test set (voices like training's) and on a variant-voice set (the dev
sentences spoken by espeak-ng voices, speeds and pitches that training never heard), the training
wall time and the training process's peak memory. Everything runs through the real CLI on
configs/demo.yaml, on a store prepared with its audio (prepare --audio opus) so all three read the
same data. Slow (three demo trainings): part of make bench, never of make test.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DATA, ROOT, emit, setup

sys.path.insert(0, str(ROOT / "demo"))
import corpus

UNSEEN_VOICES = ["+Annie", "+Michael", "+Andrea", "+Iven3", "+Alicia", "+Gene"]  # not in synth.VOICE_VARIANTS
VARIANTS = {
    "full": [],
    "lora": ["train.method=lora", "train.learning_rate=1e-3"],
    "augment": [f"data.augment.{k}_prob=0.5" for k in ("pitch", "gain", "noise")] + ["data.augment.spec_augment=true"],
}
PEAK = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
    "sys.exit(r.returncode)\n"
)


def cli(*args: str, peak: bool = False) -> tuple[float, float]:
    """Run ``whisperft ARGS``; (seconds, peak resident MB of the command when ``peak``)."""
    cmd = [str(Path(sys.executable).with_name("whisperft")), *args]
    if peak:
        cmd = [sys.executable, "-c", PEAK, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"whisperft {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    kb = next((int(x.split()[1]) for x in proc.stdout.splitlines() if x.startswith("PEAK_KB")), 0)
    return seconds, kb / 1024


def variant_voices(cv: Path, out: Path) -> Path:
    """The demo's dev sentences spoken by unseen voices, fast or slow and high or low, as a test split."""
    from whisperft.synth import convert, speak

    if (out / "test.tsv").is_file():
        return out
    with open(cv / "dev.tsv", encoding="utf-8") as fh:
        texts = [row["sentence"] for row in csv.DictReader(fh, delimiter="\t")]
    rng = random.Random(11)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(texts):
        name = f"variant_{i:03d}.mp3"
        voice = "sv" + rng.choice(UNSEEN_VOICES)
        wav = out / f"{i}.wav"
        speak(text, wav, voice=voice, speed=rng.choice([105, 115, 195, 210]), pitch=rng.choice([10, 18, 85, 95]))
        convert(wav, out / "clips" / name)
        wav.unlink()
        rows.append((name, text))
    with open(out / "test.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["path", "sentence"])
        w.writerows(rows)
    return out


def wer(model: Path, store: Path, out: Path) -> float:
    cli("eval", "--model", str(model), "--data", str(store), "--split", "test", "--max-new-tokens", "64",
        "--out", str(out))  # fmt: skip
    return round(100 * json.loads(out.read_text())["wer"], 1)


def main() -> None:
    setup()
    root = DATA / "levers"
    cv = corpus.build(ROOT / "runs" / "demo" / "cv" / "sv-SE")
    store, variant_store = root / "store", root / "variant-store"
    if not (store / "_COMPLETE").is_file():
        cli("prepare", "--lang", "sv", "--source", str(cv), "--model", "bundled:base", "--out", str(store),
            "--audio", "opus")  # fmt: skip
    if not (variant_store / "_COMPLETE").is_file():
        source = variant_voices(cv, root / "variant-cv")
        cli("prepare", "--lang", "sv", "--source", str(source), "--model", "bundled:base", "--out", str(variant_store))
    base = Path("bundled:base")
    results = {"before": {"test_wer": wer(base, store, root / "before-test.json"),
                          "variant_wer": wer(base, variant_store, root / "before-variant.json")}}  # fmt: skip
    for name, overrides in VARIANTS.items():
        run = root / name
        shutil.rmtree(run, ignore_errors=True)
        seconds, peak_mb = cli("train", "configs/demo.yaml", f"data.store={store}", f"train.output_dir={run}",
                               "--no-progress", *overrides, peak=True)  # fmt: skip
        results[name] = {
            "test_wer": wer(run / "final", store, run / "test.json"),
            "variant_wer": wer(run / "final", variant_store, run / "variant.json"),
            "train_s": round(seconds),
            "peak_mb": round(peak_mb),
        }
        print(name, results[name], flush=True)
    emit(
        "levers_demo",
        target="a comparison to report (no target)",
        reference_full_test_wer=results["full"]["test_wer"],
        **{f"{k}_{m}": v for k, r in results.items() for m, v in r.items()},
        setting="configs/demo.yaml (bundled base, 150 steps, packed 8 s windows, batch 8) on a store with "
        "its audio; lora: r 32, lr 1e-3; augment: pitch, gain, noise at p=0.5 and SpecAugment; variant set: "
        "the 20 dev sentences in unseen voices, speeds and pitches",
    )


if __name__ == "__main__":
    main()
