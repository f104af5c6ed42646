"""Measurement: the default beam size of ``transcribe`` and ``eval``, per engine, from WER and time.

Bundled base on each engine (PyTorch float32; faster-whisper on the bundled CTranslate2 folder), beam 1
(greedy) against beam 5 (faster-whisper's and openai-whisper's default), with text only and with
timestamps (subtitles), on:
- short clips: the 30 English sentences of ``demo/sentences_en.txt``, espeak-ng voices of varied
  speed and pitch (about 2-4 s each), decoded as one batch of files;
- long-form: a 3-minute English recording read without pauses (``devkit.synth.long_recording``);
- real voices: 60 of Debian's Spanish Asterisk phone prompts of 3 words or more (one professional
  speaker, 8 kHz; ``demo/real_speech.py``), as short clips in Spanish.
One run each (the 2-core machine makes PyTorch beam 5 on long-form slow); WER is normalized, in percent.
"""

from __future__ import annotations

import random
import sys
import time

from benchmarks.common import DATA, EN, ROOT, emit, long_english, setup


def short_clips() -> tuple[list, list[str]]:
    from whisperft.audio import decode_audio
    from whisperft.synth import speak

    folder = DATA / "beam-clips"
    rng = random.Random(5)
    audios = []
    for i, text in enumerate(EN):
        wav = folder / f"{i:02d}.wav"
        voice, speed, pitch = rng.choice(["en", "en-us", "en+m3", "en+f2"]), rng.randint(140, 185), rng.randint(30, 70)
        if not wav.is_file():
            speak(text, wav, voice, speed, pitch)
        audios.append(decode_audio(wav))
    return audios, list(EN)


def real_clips(n: int = 60) -> tuple[list, list[str]]:
    """The first ``n`` usable Spanish Asterisk prompts of 3 words or more, by name."""
    from whisperft.audio import decode_audio

    sys.path.insert(0, str(ROOT / "demo"))
    import real_speech

    real_speech.ensure_packages(["asterisk-core-sounds-es", "asterisk-core-sounds-es-wav"])
    prompts = real_speech.read_script("es")
    real_speech.screen(prompts)
    chosen = sorted((p for p in prompts if p.reason is None and len(p.text.split()) >= 3), key=lambda p: p.name)[:n]
    return [decode_audio(p.wav) for p in chosen], [p.text for p in chosen]


def measure(engine, audios: list, refs: list[str], lang: str, beams: int, timestamps: bool) -> tuple[float, float]:
    from whisperft.metrics import score
    from whisperft.transcribe.decoding import DecodeOptions

    t0 = time.perf_counter()
    out = engine.transcribe(audios, DecodeOptions(engine.decoding(lang), num_beams=beams, timestamps=timestamps))
    seconds = time.perf_counter() - t0
    hyps = [o.text for o in out]
    wer = score([str(i) for i in range(len(refs))], refs, hyps, lang)[0]["wer_normalized"]
    return round(100 * wer, 2), round(seconds, 1)


def main() -> None:
    setup()
    from whisperft.audio import decode_audio
    from whisperft.models.bundled import ensure_bundled_ct2
    from whisperft.transcribe.decoding import DecodeOptions
    from whisperft.transcribe.load import load_engine

    clips, clip_refs = short_clips()
    wav, ref = long_english(3.0)
    sets = {
        "short": (clips, clip_refs, "en"),
        "long": ([decode_audio(wav)], [ref], "en"),
        "real_es": (*real_clips(), "es"),
    }
    engines = {
        "ct2": lambda: load_engine(str(ensure_bundled_ct2("base"))),
        "pytorch": lambda: load_engine("bundled:base"),
    }
    for name, load in engines.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        engine = load()
        engine.transcribe(clips[:2], DecodeOptions(engine.decoding("en"), num_beams=1, timestamps=False))  # warm-up
        fields: dict[str, float] = {}
        for label, (audios, refs, lang) in sets.items():
            for stamps in (False, True):
                for beams in (1, 5):
                    key = f"{label}_{'srt' if stamps else 'txt'}_beam{beams}"
                    fields[f"{key}_wer"], fields[f"{key}_s"] = measure(engine, audios, refs, lang, beams, stamps)
        ratio = round(fields["short_txt_beam5_s"] / fields["short_txt_beam1_s"], 3)
        emit(f"beam_size_{name}", ours_short_txt_beam5_wer=fields["short_txt_beam5_wer"],
             reference_short_txt_beam1_wer=fields["short_txt_beam1_wer"], ratio=ratio,
             target="a measurement to choose defaults from (ratio: beam 5's time over beam 1's, short clips)",
             **fields, setting=f"bundled base, {len(clips)} espeak-ng English clips, a 3-minute recording, "
             "60 Spanish Asterisk prompts; batch 8, one run each; WER normalized, %")  # fmt: skip


if __name__ == "__main__":
    main()
