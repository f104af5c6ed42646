"""Claims: bundled base exported with ``whisperft export --to ggml | onnx | openai`` transcribes in each client
as well as faster-whisper int8 on the same weights (WER within 2 points), and the table says which client is
fastest on a CPU and how large each file is.

The 3-minute English espeak-ng recording of ``bench_fw.py``, one whole process per client (start-up, model
load, decoding), greedy, English forced, each client's own long-form loop: faster-whisper's
``WhisperModel.transcribe`` (the reference, int8), whisper.cpp through pywhispercpp (f16, q8_0, q5_0),
openai-whisper's ``transcribe`` (its float16 checkpoint, computed in float32 on a CPU), and the ONNX folder
(float32, int8) run by plain onnxruntime (``OnnxWhisper``) on whisperft's pause-cut chunks, 8 at a time.
Export times include the parity check.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks.bench_fw import FW_SEQUENTIAL, harvard_recording, timed
from benchmarks.common import DATA, emit, setup

GGML = """
import os, sys
import soundfile as sf
from pywhispercpp.model import Model
audio, _ = sf.read(sys.argv[2], dtype="float32")
model = Model(sys.argv[1], redirect_whispercpp_logs_to=None, n_threads=os.cpu_count(), print_progress=False)
print(" ".join(s.text.strip() for s in model.transcribe(audio, language="en")))
"""
OPENAI = """
import sys, whisper
model = whisper.load_model(sys.argv[1], device="cpu")
print(model.transcribe(sys.argv[2], language="en", fp16=False)["text"])
"""
ONNX = """
import sys
from whisperft.audio import decode_audio
from whisperft.export.onnx import OnnxWhisper
from whisperft.transcribe.chunking import speech_chunks
audio = decode_audio(sys.argv[2])
chunks = [audio[a:b] for a, b in speech_chunks(audio)]
model = OnnxWhisper(sys.argv[1])
print(" ".join(t for i in range(0, len(chunks), 8) for t in model.transcribe(chunks[i : i + 8], "en")))
"""
# target -> (quantizations, client script, the file or folder the client opens)
TARGETS = {
    "ggml": (("f16", "q8_0", "q5_0"), GGML, "ggml-model.bin"),
    "openai": (("float16",), OPENAI, "model.pt"),
    "onnx": (("float32", "int8"), ONNX, ""),
}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def main(repeats: int = 1) -> None:
    setup()
    from whisperft.export.parity import parity_clips
    from whisperft.export.run import export_model
    from whisperft.metrics import score
    from whisperft.models.registry import resolve_model

    base = resolve_model("bundled:base")
    clips = parity_clips("en")
    ct2_dir = DATA / "base-ct2-int8"
    if not (ct2_dir / "model.bin").is_file():
        export_model("ct2", base, ct2_dir, "int8", clips, "en")
    wav, ref = harvard_recording()
    py = sys.executable

    def wer(text: str) -> float:
        return round(score(["x"], [ref], [text], "en")[0]["wer_normalized"], 4)

    t_ref, out_ref = timed([py, "-c", FW_SEQUENTIAL, str(ct2_dir), wav], repeats)
    wer_ref, size_ref = wer(out_ref), size_mb(ct2_dir / "model.bin")
    chosen = sys.argv[1:] or list(TARGETS)  # e.g. python -m benchmarks.bench_export onnx
    for target, (quantizations, script, opened) in ((t, TARGETS[t]) for t in chosen):
        for quantization in quantizations:
            out = DATA / f"base-{target}-{quantization}"
            t0 = time.perf_counter()
            result = export_model(target, base, out, quantization, clips, "en")
            export_s = time.perf_counter() - t0
            t, text = timed([py, "-c", script, str(out / opened), wav], repeats)
            emit(
                f"export_{target}_{quantization}_vs_faster_whisper",
                ours_s=round(t, 2),
                reference_faster_whisper_int8_s=round(t_ref, 2),
                ratio=round(t / t_ref, 3),
                target="WER <= faster-whisper int8's + 0.02; time and size measured, no bound",
                wer_normalized=wer(text),
                wer_normalized_faster_whisper_int8=wer_ref,
                size_mb=size_mb(out / opened),
                size_mb_faster_whisper_int8=size_ref,
                export_s=round(export_s, 1),
                parity_wer=result.parity_wer,
                audio_minutes=3.0,
                repeats=repeats,
                model="bundled:base",
            )


if __name__ == "__main__":
    main()
