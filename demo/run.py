"""make demo: Whisper base learns Swedish on this CPU, offline, end to end through the real CLI.

install (make) -> synthesize a Common Voice style corpus -> prepare -> baseline eval of bundled:base
-> fine-tune (configs/demo.yaml) -> eval -> transcribe one unseen clip to SRT.
Writes the model to runs/demo/model/ and a before/after table to runs/demo/metrics.json.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "runs" / "demo"
sys.path.insert(0, str(ROOT))  # devkit/ (not packaged), which corpus synthesizes with
sys.path.insert(0, str(Path(__file__).parent))

import corpus  # noqa: E402


def whisperft(*args: str) -> None:
    exe = Path(sys.executable).with_name("whisperft")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "whisperft.cli"]), *args]
    print("$ whisperft " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"demo failed at: whisperft {' '.join(args)} (exit {proc.returncode})")


def main() -> None:
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    def step(name: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        fn(*args)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}: {timings[name]:.0f} s]\n", flush=True)

    cv = RUN / "cv" / "sv-SE"
    store = RUN / "store"
    step("corpus", corpus.build, cv)
    shutil.rmtree(store, ignore_errors=True)
    step("prepare", whisperft, "prepare", "--lang", "sv", "--source", str(cv), "--model", "bundled:base",
         "--out", str(store))  # fmt: skip
    step("baseline_eval", whisperft, "eval", "--model", "bundled:base", "--data", str(store), "--split", "test",
         "--max-new-tokens", "64", "--out", str(RUN / "baseline" / "metrics.json"))  # fmt: skip
    shutil.rmtree(RUN / "train", ignore_errors=True)
    step("train", whisperft, "train", "configs/demo.yaml", f"data.store={store}", f"train.output_dir={RUN / 'train'}")
    model = RUN / "model"
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(RUN / "train" / "final", model)
    step("finetuned_eval", whisperft, "eval", "--model", str(model), "--data", str(store), "--split", "test",
         "--max-new-tokens", "64", "--out", str(RUN / "finetuned" / "metrics.json"))  # fmt: skip
    clip = next(p for p in sorted((cv / "clips").glob("demo_sv_test_*.mp3")))
    step("transcribe", whisperft, "transcribe", str(clip), "--model", str(model), "--lang", "sv", "--format", "srt",
         "--output-dir", str(RUN / "subtitles"))  # fmt: skip

    before = json.loads((RUN / "baseline" / "metrics.json").read_text())
    after = json.loads((RUN / "finetuned" / "metrics.json").read_text())
    train_metrics = json.loads((model / "metrics.json").read_text())
    total = round(time.perf_counter() - t_all, 1)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores",
        "test_utterances": after["num_utterances"],
        "test_sentences_seen_in_training": 0,
        "before": {k: before[k] for k in ("wer", "cer", "wer_normalized", "cer_normalized")},
        "after": {k: after[k] for k in ("wer", "cer", "wer_normalized", "cer_normalized")},
        "wer_reduction_factor": round(before["wer"] / after["wer"], 2) if after["wer"] else None,
        "train_steps": train_metrics["steps"],
        "best_validation_wer": train_metrics["best_wer"],
        "final_from": train_metrics["final_from"],
        "timings_s": timings,
        "total_s": total,
        "model": str(model.relative_to(ROOT)),
        "subtitles": str((RUN / "subtitles" / f"{clip.stem}.srt").relative_to(ROOT)),
    }
    (RUN / "metrics.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print("\nWhisper base on unseen Swedish test sentences (espeak-ng voices)")
    print(f"{'':16}{'WER':>9}{'CER':>9}{'WER norm':>10}{'CER norm':>10}")
    for label, m in (("before (base)", before), ("after fine-tune", after)):
        print(f"{label:16}{100 * m['wer']:8.1f}%{100 * m['cer']:8.1f}%{100 * m['wer_normalized']:9.1f}%"
              f"{100 * m['cer_normalized']:9.1f}%")  # fmt: skip
    print(
        f"\nWER cut by {report['wer_reduction_factor']}x in {train_metrics['steps']} steps; total {total / 60:.1f} min"
    )
    print(f"timings (s): {timings}")
    print(f"model: {report['model']}   subtitles: {report['subtitles']}   report: runs/demo/metrics.json")
    print((RUN / "subtitles" / f"{clip.stem}.srt").read_text())


if __name__ == "__main__":
    main()
