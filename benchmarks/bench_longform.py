"""Claims: long-form transcription of a 10-minute file is >=1.5x faster than
transformers.pipeline("automatic-speech-recognition", chunk_length_s=30) with the same model and
greedy decoding, at matching WER; and >=3x through the same model exported to CTranslate2 int8."""

from __future__ import annotations

import sys

from benchmarks.common import DATA, best_of, emit, long_english, setup


def main(repeats: int = 3, minutes: float = 10.0) -> None:
    setup()
    from transformers import pipeline

    from whisperft.audio import decode_audio
    from whisperft.export.ct2 import export_ct2
    from whisperft.export.parity import parity_clips
    from whisperft.metrics import score
    from whisperft.models.registry import load_model, load_processor, resolve_model
    from whisperft.transcribe.decoding import DecodeOptions
    from whisperft.transcribe.engine import Transcriber
    from whisperft.transcribe.fw_engine import FasterWhisperTranscriber

    wav, ref = long_english(minutes)
    audio = decode_audio(wav)
    path = resolve_model("bundled:base")
    model, proc = load_model(path), load_processor(path)
    transcriber = Transcriber(model, proc)
    pipe = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=proc.tokenizer,
        feature_extractor=proc.feature_extractor,
        chunk_length_s=30,
        device="cpu",
    )

    ct2_dir = DATA / "base-ct2-int8"
    if not (ct2_dir / "model.bin").is_file():
        export_ct2(path, ct2_dir, "int8", verify_audio=parity_clips("en"), language="en")  # as the CLI does
    fast = FasterWhisperTranscriber(ct2_dir)

    def ours() -> str:
        return transcriber.transcribe([audio], DecodeOptions(transcriber.decoding("en")))[0].text

    def ours_ct2() -> str:
        return fast.transcribe([audio], DecodeOptions(fast.decoding("en")))[0].text

    def reference() -> str:
        out = pipe(audio.copy(), generate_kwargs={"language": "en", "task": "transcribe", "num_beams": 1})
        return out["text"]

    t_ours, text_ours = best_of(ours, repeats)
    t_ct2, text_ct2 = best_of(ours_ct2, repeats)
    t_ref, text_ref = best_of(reference, repeats)

    def wer(text: str) -> float:
        return round(score(["x"], [ref], [text], "en")[0]["wer_normalized"], 4)

    seconds = len(audio) / 16000
    claims = (
        ("longform_transcription", t_ours, text_ours, ">= 1.5x at matching WER", "bundled:base"),
        ("longform_ct2_int8", t_ct2, text_ct2, ">= 3x at matching WER", "bundled:base, export --quantization int8"),
    )
    for claim, t, text, target, model in claims:
        emit(
            claim,
            ours_x_realtime=round(seconds / t, 2),
            pipeline_x_realtime=round(seconds / t_ref, 2),
            ratio=round(t_ref / t, 2),
            target=target,
            wer_normalized_ours=wer(text),
            wer_normalized_pipeline=wer(text_ref),
            audio_minutes=round(seconds / 60, 1),
            repeats=repeats,
            model=model,
        )


if __name__ == "__main__":
    main(*(float(a) if i else int(a) for i, a in enumerate(sys.argv[1:])))
