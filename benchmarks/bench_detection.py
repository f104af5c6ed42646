"""Measurement: ``--lang auto`` after fine-tuning on one language (Whisper-Finetune#126).

configs/demo.yaml (bundled base on the demo's espeak-ng Swedish) trained for 0 (the base model), 12, 24
and 48 steps; after each, ``--lang auto`` on 20 English espeak-ng clips (``demo/sentences_en.txt``), 20
Spanish Asterisk prompts (a real voice) and 20 of the demo's Swedish test clips: the share detected as
Swedish, and the English WER with ``--lang auto`` against ``--lang en``. What a user should do about it is
in docs/languages.md ("Detection after fine-tuning").
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from benchmarks.common import DATA, EN, ROOT, cli, emit, prepared, setup

sys.path.insert(0, str(ROOT / "demo"))
import corpus

STEPS = (12, 24, 48)


def sets(cv: Path) -> dict[str, tuple[list, list[str], str]]:
    """name -> (audios, references, their language)."""
    from benchmarks.bench_beams import real_clips
    from whisperft.audio import decode_audio
    from whisperft.synth import speak

    folder = DATA / "detect-en"
    english = []
    for i, text in enumerate(EN[:20]):
        wav = folder / f"{i:02d}.wav"
        if not wav.is_file():
            speak(text, wav, voice="en-us" if i % 2 else "en", speed=150 + i)
        english.append(decode_audio(wav))
    with open(cv / "test.tsv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))[:20]
    swedish = [decode_audio(cv / "clips" / r["path"]) for r in rows]
    spanish, spanish_refs = real_clips(20)
    return {"en": (english, EN[:20], "en"), "es": (spanish, spanish_refs, "es"),
            "sv": (swedish, [r["sentence"] for r in rows], "sv")}  # fmt: skip


def measure(model: str, data: dict) -> dict[str, float]:
    from whisperft.metrics import score
    from whisperft.transcribe.decoding import DecodeOptions
    from whisperft.transcribe.load import load_engine

    engine = load_engine(model)
    out: dict[str, float] = {}
    for name, (audios, refs, lang) in data.items():
        ids = [str(i) for i in range(len(refs))]
        auto = engine.transcribe(audios, DecodeOptions(engine.decoding("auto"), num_beams=1, timestamps=False))
        out[f"{name}_as_sv"] = sum(o.language == "sv" for o in auto) if name != "sv" else 0
        out[f"{name}_detected_right"] = sum(o.language == lang for o in auto)
        out[f"{name}_wer_auto"] = round(100 * score(ids, refs, [o.text for o in auto], lang)[0]["wer_normalized"], 1)
        if name == "en":
            forced = engine.transcribe(audios, DecodeOptions(engine.decoding(lang), num_beams=1, timestamps=False))
            out["en_wer_forced"] = round(100 * score(ids, refs, [o.text for o in forced], lang)[0]["wer_normalized"], 1)
    return out


def main() -> None:
    setup()
    root = DATA / "detection"
    cv = corpus.build(ROOT / "runs" / "demo" / "cv" / "sv-SE")
    store = prepared(cv, "sv", root / "store")
    data = sets(cv)
    results = {0: measure("bundled:base", data)}
    print(0, results[0], flush=True)
    for steps in STEPS:
        run = root / f"steps-{steps}"
        shutil.rmtree(run, ignore_errors=True)
        cli("train", "configs/demo.yaml", f"data.store={store}", f"train.output_dir={run}", "--no-progress",
            f"train.max_steps={steps}", f"train.eval_steps={steps}", f"train.save_steps={steps}",
            f"train.warmup_steps={min(20, steps // 2)}")  # fmt: skip
        results[steps] = measure(str(run / "final"), data)
        print(steps, results[steps], flush=True)
    last = results[STEPS[-1]]
    emit("language_detection_after_finetuning", ours_en_as_sv=last["en_as_sv"],
         reference_base_en_as_sv=results[0]["en_as_sv"], ratio="-",
         target="a measurement to choose what --lang auto does after fine-tuning (no target)",
         **{f"steps_{s}_{k}": v for s, r in results.items() for k, v in r.items()},
         setting="configs/demo.yaml (bundled base, packed 8 s windows, batch 8, lr 2e-5) on the demo's Swedish, "
         "0/12/24/48 steps; 20 English espeak-ng clips, 20 Spanish Asterisk prompts, 20 Swedish test clips; "
         "greedy, PyTorch engine")  # fmt: skip


if __name__ == "__main__":
    main()
