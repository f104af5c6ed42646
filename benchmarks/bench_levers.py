"""The demo run four ways: full fine-tuning, LoRA, full fine-tuning with augmentation, and with the
telephone channel.

For each: WER on the demo's test set (voices like training's), on a variant-voice set (the dev
sentences spoken by espeak-ng voices, speeds and pitches that training never heard), and on a phone
set (the test clips through a real telephone codec: sox's band-pass to 300-3400 Hz, 8 kHz, GSM 06.10
full rate, a codec the telephone augmentation, G.711, does not imitate), the training wall time and
the training process's peak memory. Everything runs through the real CLI on
configs/demo.yaml, on a store prepared with its audio (prepare --audio opus) so all four read the
same data. Claims: levers_demo (full, lora, augment) and telephone_augment (full, telephone); a claim
whose variants were not all run (``--variants``) is not emitted. Slow (four demo trainings of about
12 minutes): part of make bench, never of make test.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
from pathlib import Path

from benchmarks.common import DATA, ROOT, cli, converted_test, emit, prepared, setup, test_table

sys.path.insert(0, str(ROOT / "demo"))
import corpus

UNSEEN_VOICES = ["+Annie", "+Michael", "+Andrea", "+Iven3", "+Alicia", "+Gene"]  # not in devkit.synth.VOICE_VARIANTS
VARIANTS = {
    "full": [],
    "lora": ["train.method=lora", "train.learning_rate=1e-3"],
    "augment": [f"data.augment.{k}_prob=0.5" for k in ("pitch", "gain", "noise")] + ["data.augment.spec_augment=true"],
    "telephone": ["data.augment.telephone_prob=0.5"],
}
CLAIMS = {"levers_demo": ("full", "lora", "augment"), "telephone_augment": ("full", "telephone")}


def variant_voices(cv: Path, out: Path) -> Path:
    """The demo's dev sentences spoken by unseen voices, fast or slow and high or low, as a test split."""
    from devkit.synth import convert
    from whisperft.synth import speak

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
    test_table(out, rows)
    return out


def phone_copy(cv: Path, out: Path) -> Path:
    """The demo's test split through a telephone line: band-pass 300-3400 Hz, 8 kHz, GSM 06.10 (sox)."""
    return converted_test(cv, out, lambda clip, wav: ["sox", str(clip), "-r", "8000", "-c", "1", "-e",
                                                       "gsm-full-rate", str(wav), "sinc", "300-3400"])  # fmt: skip


def wer(model: Path, store: Path, out: Path) -> float:
    cli("eval", "--model", str(model), "--data", str(store), "--split", "test", "--max-new-tokens", "64",
        "--out", str(out))  # fmt: skip
    return round(100 * json.loads(out.read_text())["wer"], 1)


def flat(results: dict[str, dict], variants: tuple[str, ...]) -> dict[str, float]:
    """``{variant}_{figure}`` for the baseline and ``variants``."""
    return {f"{k}_{m}": v for k in ("before", *variants) for m, v in results[k].items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    setup()
    root = DATA / "levers"
    cv = corpus.build(ROOT / "runs" / "demo" / "cv" / "sv-SE")
    store, variant_store, phone_store = root / "store", root / "variant-store", root / "phone-store"
    prepared(cv, "sv", store, audio=True)
    for extra, make in ((variant_store, variant_voices), (phone_store, phone_copy)):
        if not (extra / "_COMPLETE").is_file():
            prepared(make(cv, extra.with_name(extra.name.replace("store", "cv"))), "sv", extra)
    sets = {"test_wer": store, "variant_wer": variant_store, "phone_wer": phone_store}
    base = Path("bundled:base")
    results = {"before": {k: wer(base, s, root / f"before-{k}.json") for k, s in sets.items()}}
    for name in args.variants:
        run = root / name
        shutil.rmtree(run, ignore_errors=True)
        seconds, peak_mb = cli("train", "configs/demo.yaml", f"data.store={store}", f"train.output_dir={run}",
                               "--no-progress", *VARIANTS[name], peak=True)  # fmt: skip
        results[name] = {k: wer(run / "final", s, run / f"{k}.json") for k, s in sets.items()}
        results[name].update(train_s=round(seconds), peak_mb=round(peak_mb))
        print(name, results[name], flush=True)
    for claim, needed in CLAIMS.items():
        if not all(v in results for v in needed):
            print(f"{claim}: not measured (needs --variants {' '.join(needed)})", flush=True)
    setting = "configs/demo.yaml (bundled base, 150 steps, packed 8 s windows, batch 8) on a store with its audio; "
    if all(v in results for v in CLAIMS["levers_demo"]):
        emit(
            "levers_demo",
            target="a comparison to report (no target)",
            reference_full_test_wer=results["full"]["test_wer"],
            **flat(results, CLAIMS["levers_demo"]),
            setting=setting + "lora: r 32, lr 1e-3; augment: pitch, gain, noise at p=0.5 and SpecAugment; variant "
            "set: the 20 dev sentences in unseen voices, speeds and pitches; phone set: the 45 test clips through "
            "sox (300-3400 Hz, 8 kHz, GSM 06.10)",
        )
    if all(v in results for v in CLAIMS["telephone_augment"]):
        emit(
            "telephone_augment",
            target="lower phone-set WER than full fine-tuning without it (no numeric target)",
            reference_full_phone_wer=results["full"]["phone_wer"],
            ours_telephone_phone_wer=results["telephone"]["phone_wer"],
            ratio=round(results["full"]["phone_wer"] / max(results["telephone"]["phone_wer"], 0.1), 2),
            **flat(results, CLAIMS["telephone_augment"]),
            setting=setting + "telephone: data.augment.telephone_prob=0.5 (G.711 µ-law or A-law, 300-3400 Hz, 8 kHz) "
            "on wideband training audio; phone set: the 45 test clips through sox (300-3400 Hz, 8 kHz, GSM 06.10)",
        )


if __name__ == "__main__":
    main()
