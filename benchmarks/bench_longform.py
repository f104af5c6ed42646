"""Claim: long-form transcription of a 10-minute file is >=1.5x faster than
transformers.pipeline("automatic-speech-recognition", chunk_length_s=30) with the same model and
greedy decoding, at matching WER."""

from __future__ import annotations

import sys

from benchmarks.common import best_of, emit, long_english, setup


def main(repeats: int = 3, minutes: float = 10.0) -> None:
    setup()
    from transformers import pipeline

    from whisperft.audio import decode_audio
    from whisperft.evaluate import score
    from whisperft.models import load_model, load_processor, resolve_model
    from whisperft.transcribe import Transcriber

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

    def ours() -> str:
        return transcriber.transcribe([audio], "en")[0][1]

    def reference() -> str:
        out = pipe(audio.copy(), generate_kwargs={"language": "en", "task": "transcribe", "num_beams": 1})
        return out["text"]

    t_ours, text_ours = best_of(ours, repeats)
    t_ref, text_ref = best_of(reference, repeats)
    wer_ours = score(["x"], [ref], [text_ours], "en")[0]["wer_normalized"]
    wer_ref = score(["x"], [ref], [text_ref], "en")[0]["wer_normalized"]
    seconds = len(audio) / 16000
    emit(
        "longform_transcription",
        ours_x_realtime=round(seconds / t_ours, 2),
        pipeline_x_realtime=round(seconds / t_ref, 2),
        ratio=round(t_ref / t_ours, 2),
        target=">= 1.5x at matching WER",
        wer_normalized_ours=round(wer_ours, 4),
        wer_normalized_pipeline=round(wer_ref, 4),
        audio_minutes=round(seconds / 60, 1),
        repeats=repeats,
    )


if __name__ == "__main__":
    main(*(float(a) if i else int(a) for i, a in enumerate(sys.argv[1:])))
