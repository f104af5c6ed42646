"""``whisperft export --to ggml | onnx | openai``: each export loaded and run by its own client (pywhispercpp,
onnxruntime, openai-whisper), on a tiny trained model and on the bundled base."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ENGLISH, SWEDISH, invoke
from whisperft.audio import decode_audio
from whisperft.metrics import score
from whisperft.synth import speak

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("en")
    return [speak(s, root / f"{i}.wav", voice="en") for i, s in enumerate(ENGLISH[:4])]


def _export(model: str | Path, out: Path, to: str, clips: list[Path], *extra: str) -> str:
    """Run ``whisperft export`` with ``clips`` for the parity check; the CLI's output."""
    r = invoke("export", str(model), str(out), "--to", to, *[a for c in clips for a in ("--verify-audio", str(c))],
               *extra)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "parity: " in r.output and f"exported ({to}" in r.output
    return r.output


def _wer(truth: list[str], hyps: list[str], lang: str) -> float:
    return float(score([str(i) for i in range(len(hyps))], truth, hyps, lang)[0]["wer_normalized"])


def _hf_texts(model: str, clips: list[Path], lang: str) -> list[str]:
    from whisperft.features import log_mel_batch, pad_features
    from whisperft.models.decode import generate_texts
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import context_frames

    hf = load_model(model)
    feats = pad_features(log_mel_batch([decode_audio(c) for c in clips]), context_frames(hf.config))
    return generate_texts(hf, load_processor(model).tokenizer, feats, lang)


def _openai_texts(checkpoint: Path, clips: list[Path], lang: str) -> list[str]:
    import whisper

    model = whisper.load_model(str(checkpoint), device="cpu")
    out = []
    for clip in clips:
        result = model.transcribe(str(clip), language=lang, temperature=0.0, fp16=False, without_timestamps=True)
        out.append(result["text"])
    return out


def _ggml_texts(model_file: Path, clips: list[Path], lang: str, audio_ctx: int = 0) -> list[str]:
    from whisperft.export.ggml import transcribe_ggml

    return transcribe_ggml(model_file, [decode_audio(c) for c in clips], lang, audio_ctx)


def _onnx_texts(folder: Path, clips: list[Path], lang: str) -> list[str]:
    from whisperft.export.onnx import OnnxWhisper

    return OnnxWhisper(folder).transcribe([decode_audio(c) for c in clips], lang)


def test_trained_model_runs_in_openai_whisper_whisper_cpp_and_onnxruntime(
    trained_run: Path, wavs: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """A fine-tune with a 4 s audio context. ONNX keeps its 4 s window, and whisper.cpp runs it alone with
    audio_ctx 200: both say its training sentences as the HF model does. openai-whisper, and whisper.cpp by
    default, run the 30 s window restored for them, and say what the HF model says at 30 s (this 200-step
    model never saw a 30 s window, and says other training sentences there: the cost docs/deploy.md names)."""
    import json

    import torch

    from whisperft.export.openai import transcribe_openai
    from whisperft.export.standard import stock_whisper

    final = trained_run / "final"
    clips, truth = [w for w, _ in wavs[:3]], SWEDISH[:3]
    hf = _hf_texts(str(final), clips, "sv")
    assert _wer(truth, hf, "sv") <= 0.5, hf
    hf30 = _hf_texts(stock_whisper(str(final), tmp_path / "stock", "test"), clips, "sv")

    _export(final, tmp_path / "onnx", "onnx", clips)
    assert json.loads((tmp_path / "onnx" / "preprocessor_config.json").read_text())["chunk_length"] == 4
    onnx = _onnx_texts(tmp_path / "onnx", clips, "sv")
    assert _wer(hf, onnx, "sv") <= 0.1, (hf, onnx)

    _export(final, tmp_path / "ggml", "ggml", clips)
    model_file = tmp_path / "ggml" / "ggml-model.bin"
    for audio_ctx, expected in ((200, hf), (0, hf30)):
        texts = _ggml_texts(model_file, clips, "sv", audio_ctx)
        assert _wer(expected, texts, "sv") <= 0.1, (audio_ctx, expected, texts)

    _export(final, tmp_path / "oa", "openai", clips, "--quantization", "float32")
    checkpoint = torch.load(tmp_path / "oa" / "model.pt", weights_only=True)
    assert checkpoint["dims"]["n_audio_ctx"] == 1500 and checkpoint["whisperft_language"]["language"] == "sv"
    texts = transcribe_openai(tmp_path / "oa" / "model.pt", [decode_audio(c) for c in clips], "sv")  # its README's
    assert _wer(hf30, texts, "sv") <= 0.1, (hf30, texts)


@pytest.fixture(scope="module")
def base_hf_wer(english: list[Path]) -> float:
    """Bundled base's WER on ``english`` in transformers."""
    from whisperft.models.registry import resolve_model

    return _wer(ENGLISH[: len(english)], _hf_texts(resolve_model("bundled:base"), english, "en"), "en")


@pytest.mark.parametrize(("to", "quantization"), [("openai", "float16"), ("ggml", "q5_0"), ("onnx", "int8")])
def test_bundled_base_exports_transcribe_english_as_hf_does(
    english: list[Path], base_hf_wer: float, tmp_path: Path, to: str, quantization: str
) -> None:
    """Issue #22's bar: the export, run by its own client, within 2 WER points of the HF model."""
    truth = ENGLISH[: len(english)]
    hf = base_hf_wer
    _export("bundled:base", tmp_path / to, to, english[:2], "--quantization", quantization)
    if to == "openai":
        texts = _openai_texts(tmp_path / to / "model.pt", english, "en")
    elif to == "ggml":
        texts = _ggml_texts(tmp_path / to / "ggml-model.bin", english, "en")
    else:
        texts = _onnx_texts(tmp_path / to, english, "en")
    assert _wer(truth, texts, "en") <= hf + 0.02, texts


def test_a_failed_parity_check_writes_nothing(tiny_model: Path, wavs: list[tuple[Path, str]], tmp_path: Path) -> None:
    """int8 weights flip the near-tied logits of a random model: the check fails, and no folder is left."""
    r = invoke("export", str(tiny_model), str(tmp_path / "out"), "--to", "onnx", "--quantization", "int8",
               "--verify-audio", str(wavs[0][0]))  # fmt: skip
    assert r.exit_code == 1 and "export parity check failed: onnxruntime output differs" in r.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


def test_whisper_cpp_refusing_a_file_is_an_error_not_a_crash(tiny_model: Path, tmp_path: Path) -> None:
    """whisper.cpp aborts its process on a malformed file; the check runs it in a child and reports it."""
    from whisperft.errors import WhisperftError
    from whisperft.export.ggml import check_loads, write_ggml

    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    with open(good, "wb") as f:
        write_ggml(str(tiny_model), f, "q8_0")
    check_loads(good)
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WhisperftError, match=r"whisper\.cpp could not load or run .*bad\.bin"):
        check_loads(bad)


def test_an_added_language_token_is_folded_for_stock_clients(tiny_model: Path, tmp_path: Path) -> None:
    """<|gn|> added by whisperft: openai-whisper and whisper.cpp get Whisper's 51865 tokens, the trained row
    in its fallback <|es|>'s slot, and the language is recorded."""
    import torch

    from whisperft.languages import ModelLanguage, get_language
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import add_language_token, set_language

    model, processor = load_model(str(tiny_model)), load_processor(str(tiny_model))
    add_language_token(model, processor.tokenizer, get_language("gn"), "es")
    set_language(model, "gn", own=ModelLanguage(get_language("gn"), "gn", fallback="es"))
    model.save_pretrained(tmp_path / "gn")
    processor.save_pretrained(tmp_path / "gn")
    for to in ("openai", "ggml"):
        r = invoke("export", str(tmp_path / "gn"), str(tmp_path / to), "--to", to, "--no-verify")
        assert r.exit_code == 0, r.output
    checkpoint = torch.load(tmp_path / "openai" / "model.pt", weights_only=True)
    assert checkpoint["dims"]["n_vocab"] == 51865 and checkpoint["whisperft_language"]["language"] == "gn"
    header = (tmp_path / "ggml" / "ggml-model.bin").read_bytes()[:8]
    assert int.from_bytes(header[4:], "little") == 51865


def test_unknown_target_or_quantization_is_a_usage_error(tiny_model: Path, tmp_path: Path) -> None:
    r = invoke("export", str(tiny_model), str(tmp_path / "o"), "--to", "tflite")
    assert r.exit_code == 2 and "--to must be one of ct2, ggml, onnx, openai" in r.output
    r = invoke("export", str(tiny_model), str(tmp_path / "o"), "--to", "openai", "--quantization", "int8")
    assert r.exit_code == 2 and "--quantization for openai must be one of float16, float32" in r.output


def test_openai_checkpoint_keys_are_openai_whispers(tiny_model: Path) -> None:
    """Every weight lands on a parameter or buffer of openai-whisper's model, with its shape."""
    import torch
    import whisper.model

    from whisperft.export.openai import openai_checkpoint

    checkpoint = openai_checkpoint(str(tiny_model), torch.float32)
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    expected = model.state_dict()
    assert set(checkpoint["model_state_dict"]) == set(expected)
    for name, tensor in checkpoint["model_state_dict"].items():
        assert tensor.shape == expected[name].shape, name


def test_a_missing_client_is_named_before_any_work(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pywhispercpp installed, export --to ggml says which extra to install, and writes nothing."""
    import importlib.util

    real = importlib.util.find_spec
    absent = lambda name, *a: None if name == "pywhispercpp" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", absent)
    r = invoke("export", str(tiny_model), str(tmp_path / "o"), "--to", "ggml")
    assert r.exit_code == 2 and "needs pywhispercpp: pip install 'whisperft[ggml]'" in r.output
    assert not (tmp_path / "o").exists()


def _onnx_prompt(runner: object) -> tuple[list[int], object]:
    """The English transcribe prompt of an ``OnnxWhisper``, and its feature extractor."""
    tokens = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    processor = runner.processor  # type: ignore[attr-defined]
    return processor.tokenizer.convert_tokens_to_ids(tokens), processor.feature_extractor


def test_onnx_past_protobufs_limit_keeps_the_encoder_in_external_data(
    tiny_model: Path, wavs: list[tuple[Path, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Models past protobuf's 2 GiB (medium in float32, large-v3, turbo) keep the encoder's weights in
    encoder_model.onnx_data, ONNX's external data format; with the limit lowered, the tiny model's export
    takes that path and onnxruntime decodes it token for token as the export that fits."""
    from whisperft.export import onnx as onnx_export

    inline, external = tmp_path / "inline", tmp_path / "external"
    onnx_export.export_onnx(str(tiny_model), inline)
    monkeypatch.setattr(onnx_export, "PROTOBUF_LIMIT", 1024)
    onnx_export.export_onnx(str(tiny_model), external)
    assert not (inline / onnx_export.ENCODER_DATA).exists()
    data = external / onnx_export.ENCODER_DATA
    assert data.stat().st_size > 10 * (external / onnx_export.ENCODER).stat().st_size
    runners = [onnx_export.OnnxWhisper(f) for f in (inline, external)]
    prompt, extractor = _onnx_prompt(runners[0])
    audio = [decode_audio(w) for w, _ in wavs[:2]]
    features = extractor(audio, sampling_rate=16000, return_tensors="np")["input_features"]
    ids = [r.generate(features, prompt, max_new_tokens=8) for r in runners]
    assert ids[0] == ids[1] and [len(row) for row in ids[0]] == [8, 8]


def test_the_onnx_runner_stops_a_loop_and_samples_it_again(
    tiny_model: Path, wavs: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """A random model loops: greedy, the runner stops it at the repetition rule (not at the 224-token cap),
    and it samples it again at a fallback temperature (issue #33: ONNX int8 looped to the cap)."""
    from whisperft.export.onnx import MAX_NEW_TOKENS, OnnxWhisper, export_onnx
    from whisperft.text import runaway_stop

    runner = OnnxWhisper(export_onnx(str(tiny_model), tmp_path / "onnx").out)
    prompt, extractor = _onnx_prompt(runner)
    feats = extractor([decode_audio(wavs[0][0])], sampling_rate=16000, return_tensors="np")["input_features"]
    greedy = runner.generate(feats, prompt)[0]
    stopped = runner.generate(feats, prompt, stop_repeats=True)[0]
    assert len(greedy) == MAX_NEW_TOKENS and runaway_stop(greedy, None)[1] == "repeat"
    assert len(stopped) < 64 and stopped == greedy[: len(stopped)]
    sampled = runner.generate(feats, prompt, temperature=1.0, stop_repeats=True, seed=1)[0]
    assert sampled != stopped and runaway_stop(sampled, None)[1] is None


def test_onnx_export_runs_in_optimum_with_its_own_transformers(
    english: list[Path], base_hf_wer: float, tmp_path: Path
) -> None:
    """The client the layout is for: optimum-onnx (which needs transformers < 4.58, so it lives in the
    venv ``make install`` builds for it) loads the export with ORTModelForSpeechSeq2Seq, and transformers'
    pipeline transcribes with it within 2 WER points of the HF model."""
    import json
    import subprocess

    import numpy as np

    root = Path(__file__).resolve().parent.parent
    python = root / ".venv-optimum" / "bin" / "python"
    assert python.is_file(), "make install builds .venv-optimum, the optimum client's venv"
    _export("bundled:base", tmp_path / "onnx", "onnx", english[:1])
    clips = []
    for k, wav in enumerate(english):
        clips.append(tmp_path / f"{k}.npy")
        np.save(clips[-1], decode_audio(wav))
    script = root / "tests" / "clients" / "optimum_asr.py"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run = subprocess.run([str(python), str(script), str(tmp_path / "onnx"), "en", *map(str, clips)],
                         capture_output=True, text=True, timeout=600, env={**env, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["model"] == "ORTModelForWhisper" and out["versions"]["transformers"].startswith("4.57"), out
    assert _wer(ENGLISH[: len(english)], out["texts"], "en") <= base_hf_wer + 0.02, out["texts"]
