"""Claims: ``whisperft transcribe`` on a CTranslate2 folder keeps up with faster-whisper itself.

On bundled base exported to int8, a 3-minute English espeak-ng recording (Harvard sentences,
0.3 s pauses), greedy decoding, each run a whole process (start-up, model load, decoding):
- WER at most faster-whisper's ``BatchedInferencePipeline`` (batch 8), wall time at most 1.15x its;
- a 1-second clip in at most 2.5 s, start-up included, without importing torch or transformers.
``WhisperModel.transcribe`` (faster-whisper's sequential path) is measured as well.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks.common import DATA, emit, setup

HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
]  # fmt: skip

FW_BATCHED = """
import sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="default")
segments, _ = BatchedInferencePipeline(model).transcribe(sys.argv[2], language="en", beam_size=1, batch_size=8)
print(" ".join(s.text.strip() for s in segments))
"""
FW_SEQUENTIAL = """
import sys
from faster_whisper import WhisperModel
model = WhisperModel(sys.argv[1], device="cpu", compute_type="default")
segments, _ = model.transcribe(sys.argv[2], language="en", beam_size=1)
print(" ".join(s.text.strip() for s in segments))
"""
NO_TORCH = "import sys, runpy; sys.argv = ['whisperft', *sys.argv[1:]]; from whisperft.cli import run\n" + (
    "try:\n    run()\nexcept SystemExit as e:\n    code = e.code\n"
    "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported torch'\nsys.exit(code)"
)


def harvard_recording(minutes: float = 3.0) -> tuple[str, str]:
    """Harvard sentences spoken by espeak-ng (en-us, 160 wpm) with 0.3 s pauses, cycled to ``minutes``."""
    out = DATA / f"harvard-{minutes:g}min.wav"
    ref = out.with_suffix(".txt")
    if out.is_file() and ref.is_file():
        return str(out), ref.read_text()
    parts_dir = DATA / "harvard-parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts, said, seconds = [], [], 0.0
    while seconds < minutes * 60:
        text = HARVARD[len(said) % len(HARVARD)]
        part = parts_dir / f"{len(said):03d}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(part), text], check=True)
        padded = parts_dir / f"{len(said):03d}-p.wav"
        subprocess.run(["sox", str(part), "-r", "16000", "-c", "1", str(padded), "pad", "0", "0.3"], check=True)
        seconds += float(subprocess.run(["soxi", "-D", str(padded)], capture_output=True, text=True).stdout)
        parts.append(str(padded))
        said.append(text)
    subprocess.run(["sox", *parts, str(out)], check=True)
    ref.write_text(" ".join(said))
    return str(out), " ".join(said)


def timed(cmd: list[str], repeats: int) -> tuple[float, str]:
    """Best wall time of a whole process over ``repeats`` runs, and its stdout."""
    best, out = float("inf"), ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        best = min(best, time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:4]} failed: {proc.stderr[-1500:]}")
        out = proc.stdout
    return best, out


def main(repeats: int = 3) -> None:
    setup()
    from whisperft.export.ct2 import export_ct2
    from whisperft.export.parity import parity_clips
    from whisperft.metrics import score
    from whisperft.models.registry import resolve_model

    ct2_dir = DATA / "base-ct2-int8"
    if not (ct2_dir / "model.bin").is_file():
        export_ct2(resolve_model("bundled:base"), ct2_dir, "int8", verify_audio=parity_clips("en"), language="en")
    wav, ref = harvard_recording()
    one = DATA / "harvard-1s.wav"
    subprocess.run(["sox", wav, str(one), "trim", "0", "1.0"], check=True)
    py, model = sys.executable, str(ct2_dir)
    ours = [py, "-c", NO_TORCH, "transcribe"]
    runs = {
        "fw_batched": timed([py, "-c", FW_BATCHED, model, wav], repeats),
        "fw_sequential": timed([py, "-c", FW_SEQUENTIAL, model, wav], repeats),
        "ours": timed([*ours, wav, "--model", model, "--lang", "en"], repeats),
        "fw_batched_1s": timed([py, "-c", FW_BATCHED, model, str(one)], repeats),
        "ours_1s": timed([*ours, str(one), "--model", model], repeats),
    }

    def wer(text: str) -> float:
        return round(score(["x"], [ref], [text], "en")[0]["wer_normalized"], 4)

    t_ref, t_ours = runs["fw_batched"][0], runs["ours"][0]
    emit(
        "ct2_vs_faster_whisper",
        ours_s=round(t_ours, 2),
        reference_faster_whisper_batched_s=round(t_ref, 2),
        faster_whisper_sequential_s=round(runs["fw_sequential"][0], 2),
        ratio=round(t_ours / t_ref, 3),
        target="wall <= 1.15x faster-whisper batched, WER <= its",
        wer_normalized_ours=wer(runs["ours"][1]),
        wer_normalized_faster_whisper_batched=wer(runs["fw_batched"][1]),
        wer_normalized_faster_whisper_sequential=wer(runs["fw_sequential"][1]),
        audio_minutes=3.0,
        repeats=repeats,
        model="bundled:base, export --quantization int8",
    )
    emit(
        "ct2_one_second_clip",
        ours_s=round(runs["ours_1s"][0], 2),
        reference_faster_whisper_batched_s=round(runs["fw_batched_1s"][0], 2),
        ratio=round(runs["ours_1s"][0] / runs["fw_batched_1s"][0], 3),
        target="<= 2.5 s whole process, lang auto, no torch/transformers import",
        repeats=repeats,
        model="bundled:base, export --quantization int8",
    )


if __name__ == "__main__":
    main()
