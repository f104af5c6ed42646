"""CTranslate2 import/export and the bundled real Whisper weights."""

from __future__ import annotations

import json
import multiprocessing
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration

from tests.helpers import ENGLISH, run_cli
from whisperft.audio import decode_audio
from whisperft.features import log_mel_batch, pad_features
from whisperft.metrics import score
from whisperft.models.ct2_decode import CT2Decoder
from whisperft.models.ct2_format import CT2FormatError, import_ct2, read_model_bin
from whisperft.models.decode import generate_decoded, generate_texts
from whisperft.synth import speak
from whisperft.text import Decoded, token_limit


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A real CTranslate2 model folder, made by ctranslate2's own converter from the tiny HF model."""
    from ctranslate2.converters import TransformersConverter

    out = tmp_path_factory.mktemp("ct2") / "tiny-ct2"
    TransformersConverter(str(tiny_model), copy_files=["tokenizer.json"]).convert(str(out), quantization="float32")
    return out


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    root = tmp_path_factory.mktemp("en")
    return [decode_audio(speak(s, root / f"{i}.wav", voice="en")) for i, s in enumerate(ENGLISH)]


def test_import_reproduces_every_weight(tiny_ct2: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = import_ct2(tiny_ct2, tmp_path / "hf")
    a = WhisperForConditionalGeneration.from_pretrained(tiny_model).state_dict()
    b = WhisperForConditionalGeneration.from_pretrained(out).state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["is_multilingual"] and gen["lang_to_id"]["<|sv|>"] == 50273
    assert gen["task_to_id"] == {"transcribe": 50359, "translate": 50358}
    assert gen["decoder_start_token_id"] == 50258 and gen["eos_token_id"] == 50257
    assert gen["no_timestamps_token_id"] == 50363


def _tensor_offsets(path: Path) -> tuple[int, int]:
    """Offsets of the first tensor's dtype byte and of the end of the header (for corrupting files)."""
    data = path.read_bytes()
    pos = 4
    (n,) = struct.unpack_from("<H", data, pos)
    pos += 2 + n + 4 + 4
    (n,) = struct.unpack_from("<H", data, pos)
    pos += 2 + n
    rank = data[pos]
    pos += 1 + 4 * rank
    return pos, len(data)


@pytest.mark.parametrize("fault", ["truncated", "wrong_magic", "unknown_dtype", "empty"])
def test_bad_model_bin_gives_a_clear_error_and_no_output(tiny_ct2: Path, tmp_path: Path, fault: str) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_ct2.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    data = bytearray((bad / "model.bin").read_bytes())
    dtype_at, size = _tensor_offsets(bad / "model.bin")
    if fault == "truncated":
        data = data[: size // 2]
    elif fault == "wrong_magic":
        data[:4] = struct.pack("<I", 0x464C457F)
    elif fault == "unknown_dtype":
        data[dtype_at] = 42
    else:
        data = bytearray()
    (bad / "model.bin").write_bytes(bytes(data))
    with pytest.raises(CT2FormatError) as err:
        read_model_bin(bad / "model.bin")
    msg = str(err.value)
    assert {"truncated": "truncated", "wrong_magic": "not a CTranslate2", "unknown_dtype": "unknown dtype id 42",
            "empty": "truncated"}[fault] in msg  # fmt: skip
    out = tmp_path / "out"
    r = run_cli("import-ct2", str(bad), str(out))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".tmp-out-*"))


@pytest.mark.slow
def test_bundled_base_transcribes_english(english: list[np.ndarray]) -> None:
    from whisperft.models.registry import load_model, load_processor, resolve_model

    path = resolve_model("bundled:base")
    model, tok = load_model(path), load_processor(path).tokenizer
    feats = pad_features(log_mel_batch(english))
    hyps = generate_texts(model, tok, feats, "en")
    metrics, _ = score([str(i) for i in range(len(hyps))], ENGLISH, hyps, "en")
    assert metrics["wer_normalized"] <= 0.10, list(zip(ENGLISH, hyps, strict=True))
    # issue #18: the duration bound and the repetition stop leave a model that decodes correctly as it was
    bounded = generate_decoded(model, tok, feats, "en", [token_limit(len(a) / 16000) for a in english])
    assert bounded == [Decoded(h) for h in hyps]


@pytest.mark.slow
def test_conversion_matches_ctranslate2_runtime(english: list[np.ndarray], tmp_path: Path) -> None:
    """Our HF conversion of bundled:base transcribes like the ctranslate2 runtime on the original weights."""
    from whisperft.models.bundled import source_files
    from whisperft.models.registry import load_model, load_processor, resolve_model

    parts, meta, _ = source_files("base")
    src = tmp_path / "ct2"
    src.mkdir()
    with open(src / "model.bin", "wb") as out:
        for p in parts:
            out.write(p.read_bytes())
    for f in ("tokenizer.json", "config.json", "vocabulary.json"):
        (src / f).write_bytes((meta / f).read_bytes())
    path = resolve_model("bundled:base")
    model, tok = load_model(path), load_processor(path).tokenizer
    feats = pad_features(log_mel_batch(english))
    hf = generate_texts(model, tok, feats, "en")
    ct2 = CT2Decoder(src)
    assert ct2.prompt("en") == tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    ct = ct2.generate_texts(feats.numpy(), "en")
    metrics, _ = score([str(i) for i in range(len(hf))], hf, ct, "en")
    assert metrics["wer_normalized"] <= 0.02, list(zip(hf, ct, strict=True))
    limits = [token_limit(len(a) / 16000) for a in english]
    assert ct2.generate_decoded(feats.numpy(), "en", limits) == [Decoded(t) for t in ct]  # bounded: the same
    cut = ct2.generate_decoded(feats.numpy(), "en", [3] * len(ct))  # a limit is applied per row, and counted
    assert [d.stop for d in cut] == ["limit"] * len(ct) and all(len(d.text.split()) <= 3 for d in cut)


@pytest.mark.slow
def test_export_round_trip_keeps_transcripts(english: list[np.ndarray], tmp_path: Path) -> None:
    """bundled:tiny.en -> export --to ct2 (parity-checked) -> import-ct2 -> the same transcripts."""
    from whisperft.models.registry import load_model, load_processor, resolve_model

    wavs = []
    for i, s in enumerate(ENGLISH[:3]):
        wavs.append(str(speak(s, tmp_path / f"v{i}.wav", voice="en")))
    r = run_cli("export", "bundled:tiny.en", str(tmp_path / "ct2"), "--to", "ct2", "--quantization", "float32",
                *[arg for w in wavs for arg in ("--verify-audio", w)])  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "parity: 0.0% WER" in r.stdout
    for f in ("model.bin", "tokenizer.json", "preprocessor_config.json", "config.json", "vocabulary.json"):
        assert (tmp_path / "ct2" / f).is_file(), f
    assert run_cli("import-ct2", str(tmp_path / "ct2"), str(tmp_path / "back")).returncode == 0
    feats = pad_features(log_mel_batch(english))
    orig = resolve_model("bundled:tiny.en")
    a = generate_texts(load_model(orig), load_processor(orig).tokenizer, feats, None)
    b = generate_texts(
        load_model(str(tmp_path / "back")), load_processor(str(tmp_path / "back")).tokenizer, feats, None
    )
    assert a == b


@pytest.mark.slow
def test_short_context_model_exports_for_faster_whisper(english: list[np.ndarray], tmp_path: Path) -> None:
    """A model cut to an 8 s window exports with its 30 s position table restored exactly, so stock
    faster-whisper (which pads every window to 30 s) runs it, and it transcribes as base does."""
    import soundfile as sf
    from faster_whisper import WhisperModel
    from safetensors.torch import load_file

    from whisperft.models.registry import load_model, load_processor, resolve_model
    from whisperft.models.whisper import apply_audio_context, feature_extractor_for

    base = resolve_model("bundled:base")
    model, processor = load_model(base), load_processor(base)
    apply_audio_context(model, 8)
    processor.feature_extractor = feature_extractor_for(model.config)
    model.save_pretrained(tmp_path / "short")
    processor.save_pretrained(tmp_path / "short")
    sf.write(tmp_path / "a.wav", english[0], 16000)
    r = run_cli("export", str(tmp_path / "short"), str(tmp_path / "ct2"), "--quantization", "int8",
                "--verify-audio", str(tmp_path / "a.wav"), "--lang", "en")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "with Whisper's 30 s window" in " ".join(r.stderr.split()) and "parity:" in r.stdout
    assert json.loads((tmp_path / "ct2" / "preprocessor_config.json").read_text())["chunk_length"] == 30
    assert load_file(tmp_path / "short" / "model.safetensors")["model.encoder.embed_positions.weight"].shape[0] == 400
    fw = WhisperModel(str(tmp_path / "ct2"), device="cpu", compute_type="int8")
    segments, _ = fw.transcribe(str(tmp_path / "a.wav"), language="en", beam_size=1)
    text = " ".join(seg.text for seg in segments)
    assert score(["0"], [ENGLISH[0]], [text], "en")[0]["wer_normalized"] <= 0.2, text


@pytest.mark.slow
def test_english_only_model_refuses_other_languages(english: list[np.ndarray], tmp_path: Path) -> None:
    import soundfile as sf

    sf.write(tmp_path / "a.wav", english[0], 16000)
    r = run_cli("transcribe", str(tmp_path / "a.wav"), "--model", "bundled:tiny.en", "--lang", "sv")
    assert r.returncode == 2 and "English-only" in r.stderr
    r = run_cli("transcribe", str(tmp_path / "a.wav"), "--model", "bundled:tiny.en")
    assert r.returncode == 0
    assert score(["0"], [ENGLISH[0]], [r.stdout], "en")[0]["wer_normalized"] <= 0.3, r.stdout


def _convert(cache: str, q: multiprocessing.Queue) -> None:
    import os

    os.environ["WHISPERFT_CACHE"] = cache
    from whisperft.models.bundled import ensure_bundled

    q.put(str(ensure_bundled("tiny.en")))


def test_bundled_cache_is_shared_safely_by_two_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_convert, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    paths = {q.get(), q.get()}
    assert len(paths) == 1
    target = Path(paths.pop())
    assert target.parent == tmp_path / "bundled" and (target / "_COMPLETE").is_file()
    assert [p.name for p in target.parent.iterdir() if not p.name.startswith(".")] == [target.name]
    assert not list(target.parent.glob(".tmp-*")) and not list(target.parent.glob(".src-*"))


@pytest.mark.slow
def test_language_is_detected_with_lang_auto(english: list[np.ndarray], tmp_path: Path) -> None:
    import soundfile as sf

    sf.write(tmp_path / "en.wav", english[1], 16000)
    r = run_cli("transcribe", str(tmp_path / "en.wav"), "--model", "bundled:base", "--lang", "auto",
                "--format", "json", "--output-dir", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "en.json").read_text())
    assert out["language"] == "en" and "report" in out["text"].lower()


@pytest.mark.slow
def test_transcribe_through_ctranslate2_matches_pytorch(tmp_path: Path) -> None:
    """A CTranslate2 folder (as faster-whisper ships them) takes the fast path, with timestamps, like PyTorch."""
    import subprocess

    from whisperft.models.bundled import source_files

    parts, meta, _ = source_files("tiny.en")
    assert len(parts) == 1 and (meta / "tokenizer.json").is_file()
    wavs = [str(speak(s, tmp_path / f"{i}.wav", voice="en")) for i, s in enumerate(ENGLISH)]
    long = tmp_path / "talk.wav"
    subprocess.run(["sox", *wavs, "-r", "16000", str(long), "pad", "0", "1"], check=True, capture_output=True)
    silence = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", str(silence), "trim", "0", "20"], check=True, capture_output=True)
    results = {}
    for name, spec in (("ct2", str(meta)), ("torch", "bundled:tiny.en")):
        out = tmp_path / name
        r = run_cli(
            "transcribe", str(long), str(silence), "--model", spec, "--format", "json", "--output-dir", str(out)
        )
        assert r.returncode == 0, r.stderr
        results[name] = json.loads((out / "talk.json").read_text())
        assert json.loads((out / "silence.json").read_text())["text"] == ""
    ct, pt = results["ct2"], results["torch"]
    metrics, _ = score(["talk"], [" ".join(ENGLISH)], [ct["text"]], "en")
    assert metrics["wer_normalized"] <= 0.15, ct["text"]
    agree, _ = score(["talk"], [pt["text"]], [ct["text"]], "en")
    assert agree["wer_normalized"] <= 0.05, (pt["text"], ct["text"])
    starts = [s["start"] for s in ct["segments"]]
    assert len(starts) >= 3 and starts == sorted(starts) and ct["segments"][-1]["end"] <= ct["duration"]
    r = run_cli("eval", "--model", str(meta), "--data", str(tmp_path), "--lang", "en")
    assert r.returncode == 2 and "is not a feature store" in r.stderr and "whisperft prepare" in r.stderr
