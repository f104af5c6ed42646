"""The levers users tune (#12): LoRA, memory planning, augmentation, data mixing (sweeps: test_sweep.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import run_cli, train_config


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_lora_trains_only_adapters_merges_exactly_and_resumes(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration

    kw = {"max_steps": 6, "save_steps": 3, "save_total_limit": 5, "method": "lora", "learning_rate": 1e-2,
          "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}  # fmt: skip
    cfg = train_config(tmp_path / "a.yaml", tiny_model, store, tmp_path / "a", data={"eval_split": None}, **kw)
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "LoRA r=4: training" in r.stderr
    final = tmp_path / "a" / "final"
    assert (final / "adapter" / "adapter_config.json").is_file()

    # only the adapted projections moved; everything else is the base model, bit for bit
    base, merged = _weights(tiny_model), _weights(final)
    assert base.keys() == merged.keys()
    pos = "model.encoder.embed_positions.weight"  # cut to the 4 s audio context, not trained
    assert torch.equal(merged[pos], base[pos][: len(merged[pos])])
    moved = {k for k in base if k != pos and not torch.equal(base[k], merged[k])}
    assert moved and all(k.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight",
                                     "fc1.weight", "fc2.weight")) for k in moved), moved  # fmt: skip

    # the merged model is the base plus the adapter, as peft itself merges it
    with_adapter = PeftModel.from_pretrained(WhisperForConditionalGeneration.from_pretrained(tiny_model),
                                             final / "adapter").merge_and_unload()  # fmt: skip
    for k, v in with_adapter.state_dict().items():
        if k in merged and k != pos:
            assert torch.allclose(v, merged[k], atol=1e-6), k

    # the merged folder is a plain Whisper: it exports for whisper.cpp, which loads it
    r = run_cli("export", str(final), str(tmp_path / "ggml"), "--to", "ggml", "--no-verify")
    assert r.returncode == 0 and (tmp_path / "ggml" / "ggml-model.bin").is_file(), r.stderr

    # a crash after step 3: the same command resumes there and ends where the straight run ended
    b = tmp_path / "b"
    shutil.copytree(tmp_path / "a", b, ignore=shutil.ignore_patterns("final", "step-0000006", ".lock"))
    cfg_b = train_config(tmp_path / "b.yaml", tiny_model, store, b, data={"eval_split": None}, **kw)
    r = run_cli("train", str(cfg_b))
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr and "step 3" in r.stderr
    resumed = _weights(b / "final")
    for k in merged:
        assert (merged[k] - resumed[k]).abs().max() < 1e-5, k


def test_lora_config_errors_name_the_key(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    cfg = train_config(tmp_path / "c.yaml", tiny_model, store, tmp_path / "c", method="lora",
                       lora={"r": 0, "target_modules": "q_proj"})  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 2
    assert "train.lora.target_modules: expected a list of strings" in r.stderr
    assert "train.lora.r: must be positive" in r.stderr
    assert "Traceback" not in r.stderr


def test_lora_with_frozen_encoder_adapts_the_decoder_and_keeps_the_best(
    tmp_path: Path, store: Path, tiny_model: Path
) -> None:
    lora = {"r": 2, "target_modules": ["q_proj", "v_proj"]}
    cfg = train_config(tmp_path / "d.yaml", tiny_model, store, tmp_path / "d", max_steps=4, eval_steps=2,
                       method="lora", freeze_encoder=True, lora=lora)  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    final = tmp_path / "d" / "final"
    assert (final / "adapter" / "adapter_model.safetensors").is_file()  # copied from best/ with the weights
    base, merged = _weights(tiny_model), _weights(final)
    moved = {k for k in base if "embed_positions" not in k and not torch.equal(base[k], merged[k])}
    assert moved and all(k.startswith("model.decoder.") and k.endswith(("q_proj.weight", "v_proj.weight"))
                         for k in moved), moved  # fmt: skip
    r = run_cli("eval", "--model", str(final), "--data", str(store), "--split", "validation", "--max-new-tokens", "8",
                "--out", str(tmp_path / "m.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr


# Whisper tiny's shape with random weights: big enough that the step, not the interpreter, sets the peak
TINY_SHAPE = {"d_model": 384, "encoder_layers": 4, "decoder_layers": 4, "encoder_attention_heads": 6,
              "decoder_attention_heads": 6, "encoder_ffn_dim": 1536, "decoder_ffn_dim": 1536,
              "vocab_size": 51865, "num_mel_bins": 80}  # fmt: skip
PLAN_TOLERANCE = 0.15  # measured: within 5% on this CPU (fp32, sdpa attention); docs/levers.md states 15%


@pytest.mark.slow
@pytest.mark.parametrize(
    "plan",
    [
        {},
        {"checkpointing": True},
        {"method": "lora", "lora_r": 8},
        {"method": "lora", "lora_dropout": 0.05},
        {"freeze_encoder": True},
    ],
    ids=["full", "checkpointing", "lora", "lora-dropout", "frozen-encoder"],
)
def test_plan_estimate_matches_the_measured_peak_of_real_steps(plan: dict) -> None:
    import json
    import os
    import subprocess
    import sys
    from dataclasses import asdict

    from transformers import WhisperConfig

    from whisperft.train.plan import Plan, estimate

    p = Plan(**plan)
    spec = {"plan": {**asdict(p), "lora_targets": list(p.lora_targets)}, "config": TINY_SHAPE, "batch": 4,
            "labels": 40}  # fmt: skip
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    r = subprocess.run([sys.executable, "-m", "tests.step_memory", json.dumps(spec)], capture_output=True, text=True,
                       env=env, cwd=Path(__file__).parent.parent, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    measured = json.loads(r.stdout.strip().splitlines()[-1])["measured"]
    estimated = estimate(WhisperConfig(**TINY_SHAPE), p, 40).total(4, cuda=False)
    assert abs(estimated / measured - 1) <= PLAN_TOLERANCE, (estimated / 2**20, measured / 2**20)


def test_plan_prints_every_choice_and_the_largest_batch(tmp_path: Path, store: Path, tiny_model: Path) -> None:
    cfg = train_config(tmp_path / "p.yaml", tiny_model, store, tmp_path / "p")
    r = run_cli("plan", str(cfg), "--gpu-memory", "2GB")
    assert r.returncode == 0, r.stderr
    assert "<- this config" in r.stdout and "lora r=32, bf16, checkpointing" in r.stdout
    assert f"the longest label in {store}/train" in r.stdout.replace("\n", "")
    r = run_cli("plan", str(cfg), "--gpu-memory", "lots")
    assert r.returncode == 2 and "--gpu-memory" in r.stderr


def test_largest_fitting_batch_and_the_accumulation_that_keeps_the_effective_batch() -> None:
    from whisperft.errors import UsageError
    from whisperft.train.auto_batch import largest_fitting, split_effective

    tried: list[int] = []

    def under(limit: int):  # a device that runs out of memory above ``limit``
        def fits(b: int) -> bool:
            tried.append(b)
            return b <= limit

        return fits

    assert largest_fitting(under(13), 64) == 13 and len(tried) <= 10
    assert largest_fitting(under(0), 64) == 0
    assert largest_fitting(under(100), 16) == 16
    assert split_effective(16, 1, 13) == (8, 2)
    assert split_effective(16, 2, 3) == (2, 4)
    assert split_effective(12, 1, 5) == (4, 3)
    with pytest.raises(UsageError, match="multiple of the 3 processes"):
        split_effective(16, 3, 4)


def test_batch_size_auto_under_a_memory_limit_keeps_the_effective_batch(
    tmp_path: Path, store: Path, tiny_model: Path
) -> None:
    import yaml
    from transformers import WhisperConfig

    from whisperft.config import load_config
    from whisperft.data.store import FeatureStore
    from whisperft.train.plan import estimate, label_tokens, model_config, plan_from_config

    kw = {"max_steps": 2, "save_steps": 1, "batch_size": "auto", "effective_batch_size": 8}
    cfg_path = train_config(tmp_path / "a.yaml", tiny_model, store, tmp_path / "a", data={"eval_split": None}, **kw)
    cfg = load_config(cfg_path)
    mc: WhisperConfig = model_config(cfg)
    tokens, _ = label_tokens(cfg, mc, FeatureStore(store).split("train"))
    limit = estimate(mc, plan_from_config(cfg), tokens).total(3, cuda=False) + 1024  # 3 fit, 4 do not
    data = yaml.safe_load(cfg_path.read_text())
    data["train"]["memory_limit"] = f"{limit}B"
    cfg_path.write_text(yaml.safe_dump(data))
    r = run_cli("train", str(cfg_path))
    assert r.returncode == 0, r.stderr
    assert "batch_size auto: 2 fits" in r.stderr and "largest 3" in r.stderr
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["train"]
    assert (saved["batch_size"], saved["gradient_accumulation_steps"]) == (2, 4)
    assert load_config(tmp_path / "a" / "final" / "config.yaml").train.batch_size == 2  # reloads as it ran

    # resumed, it keeps its batch even when more memory would allow another
    shutil.rmtree(tmp_path / "a" / "final")
    shutil.rmtree(tmp_path / "a" / "checkpoints" / "step-0000002")
    data["train"]["memory_limit"] = "64GB"
    cfg_path.write_text(yaml.safe_dump(data))
    r = run_cli("train", str(cfg_path))
    assert r.returncode == 0, r.stderr
    assert "resuming with the batch chosen before, 2 x 4" in r.stderr


# ---------------------------------------------------------------- augmentation


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    from whisperft.audio import decode_audio
    from whisperft.synth import speak

    wav = tmp_path_factory.mktemp("aug") / "s.wav"
    return decode_audio(speak("Det regnar i Stockholm idag och vi åker till Göteborg.", wav))


def _f0(audio: np.ndarray) -> float:
    """The strongest frequency between 60 and 400 Hz (the fundamental of a voice-like tone)."""
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / 16_000)
    band = (freqs >= 60) & (freqs <= 400)
    return float(freqs[band][np.argmax(spec[band])])


def test_each_waveform_augmentation_does_what_it_says(speech: np.ndarray) -> None:
    from whisperft.data import augment as aug

    assert len(aug.change_speed(speech, 1.25)) == pytest.approx(len(speech) / 1.25, abs=2)
    assert len(aug.time_stretch(speech, 0.8)) == pytest.approx(len(speech) / 0.8, abs=2)
    t = np.arange(32_000) / 16_000
    voice = sum(np.sin(2 * np.pi * k * 150 * t) / k for k in range(1, 6)).astype(np.float32) * 0.2  # a vowel-like tone
    for semitones in (2.0, -3.0):
        shifted = aug.shift_pitch(voice, semitones)
        assert len(shifted) == len(voice)
        assert _f0(shifted) / _f0(voice) == pytest.approx(2 ** (semitones / 12), rel=0.01)
    quiet = speech * 0.1
    rms = lambda a: float(np.sqrt(np.mean(a**2)))  # noqa: E731
    assert rms(aug.apply_gain(quiet, 6.0)) / rms(quiet) == pytest.approx(10 ** (6 / 20), rel=1e-4)
    assert np.abs(aug.apply_gain(speech, 40.0)).max() <= 1.0  # clipped like a recorder
    rng = np.random.default_rng(0)
    for color in aug.NOISE_COLORS:
        noise = aug.colored_noise(len(speech), color, rng)
        noisy = aug.add_noise(speech, noise, 12.5)
        snr = 10 * np.log10(np.mean(speech**2) / np.mean((noisy - speech) ** 2))
        assert snr == pytest.approx(12.5, abs=0.01)
    spec = np.abs(np.fft.rfft(aug.colored_noise(2**16, "pink", rng))) ** 2
    low, high = spec[10:100].mean(), spec[10_000:20_000].mean()
    assert 50 < low / high < 2000  # 1/f: about 200 times more power per bin around 50x lower frequency


def test_augmentation_is_reproducible_from_its_seed(speech: np.ndarray, tmp_path: Path) -> None:
    import soundfile as sf

    from whisperft.data.augment import Augmenter, AugmentSettings, example_rng

    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    sf.write(noise_dir / "hum.wav", 0.1 * np.sin(np.arange(24_000) * 2 * np.pi * 50 / 16_000), 16_000)
    settings = AugmentSettings(speed_prob=1, pitch_prob=1, gain_prob=1, noise_prob=1, noise_dir=str(noise_dir))
    a, b = Augmenter(settings), Augmenter(settings)
    first = a(speech, example_rng(42, 0, 7))
    assert np.array_equal(first, b(speech, example_rng(42, 0, 7)))  # same seed, epoch, clip: same audio
    assert not np.array_equal(first, a(speech, example_rng(42, 1, 7)))  # another epoch: drawn again
    assert not np.allclose(first[: len(speech)], speech[: len(first)], atol=1e-3)
    limited = Augmenter(AugmentSettings(speed_prob=1, speed_range=[0.5, 0.5]))
    assert len(limited(speech, example_rng(0, 0, 0), max_samples=len(speech))) == len(speech)  # would not fit
    # with data.mix, clip 7 of another source draws its own
    assert not np.array_equal(first, a(speech, example_rng(42, 0, 7, source=1)))


def test_spec_augment_masks_frames_in_training_only(tiny_model: Path) -> None:
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(tiny_model)
    model.config.update({"apply_spec_augment": True, "mask_time_prob": 0.2, "mask_time_length": 10,
                         "mask_feature_prob": 0.2, "mask_feature_length": 8})  # fmt: skip
    x = torch.rand(2, model.config.num_mel_bins, 3000) + 1.0
    torch.manual_seed(0)
    model.train()
    masked = model.model._mask_input_features(x.clone())
    assert (masked == 0).any() and not torch.equal(masked, x)
    model.eval()
    assert torch.equal(model.model._mask_input_features(x.clone()), x)


@pytest.fixture(scope="module")
def audio_store(tmp_path_factory: pytest.TempPathFactory, cv_folder: Path, tiny_model: Path) -> Path:
    out = tmp_path_factory.mktemp("audio-store") / "sv"
    r = run_cli("prepare", "--lang", "sv", "--source", str(cv_folder), "--model", str(tiny_model), "--out", str(out),
                "--audio", "opus")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def test_an_audio_store_keeps_the_clips_and_training_augments_them(
    audio_store: Path, store: Path, tiny_model: Path, tmp_path: Path
) -> None:
    import json

    from whisperft.data.store import FeatureStore

    split = FeatureStore(audio_store).split("train")
    assert split.has_audio and not FeatureStore(store).split("train").has_audio
    assert len(split.audio(0)) == pytest.approx(split.duration[0] * 16_000, abs=1)
    assert json.loads((audio_store / "store.json").read_text())["audio"] == "opus"
    from whisperft.data.augment import Augmenter, AugmentSettings, ClipAugment

    never, always = AugmentSettings(gain_prob=1e-12), AugmentSettings(gain_prob=1.0)
    frames, pad = ClipAugment(split, Augmenter(never), 0, 10**9)(0, 0)
    assert np.array_equal(frames, split.frames(0)) and pad == split.pad_value[0]  # nothing drawn: stored frames
    assert not np.array_equal(ClipAugment(split, Augmenter(always), 0, 10**9)(0, 0)[0], split.frames(0))

    augment = {"speed_prob": 0.5, "pitch_prob": 0.5, "gain_prob": 0.5, "noise_prob": 0.5, "spec_augment": True}
    cfg = train_config(tmp_path / "a.yaml", tiny_model, audio_store, tmp_path / "a", max_steps=3,
                       data={"augment": augment, "eval_split": None})  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "augmenting the waveform (speed, pitch, gain, noise)" in r.stderr

    cfg = train_config(tmp_path / "b.yaml", tiny_model, store, tmp_path / "b", max_steps=3, data={"augment": augment})
    r = run_cli("train", str(cfg))
    assert r.returncode == 2 and "prepare it again with --audio opus" in r.stderr
    cfg = train_config(tmp_path / "c.yaml", tiny_model, audio_store, tmp_path / "c",
                       data={"augment": {"speed_prob": 0.5}, "pack": True})  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 2 and "data.augment.speed_prob" in r.stderr


def _band_db(audio: np.ndarray, lo: float, hi: float, ref: tuple[float, float] = (500.0, 3000.0)) -> float:
    """Mean power per bin in [lo, hi) Hz relative to the ``ref`` band's, in dB (16 kHz, Hann window)."""
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 16_000)
    power = lambda a, b: spec[(freqs >= a) & (freqs < b)].mean()  # noqa: E731
    return float(10 * np.log10(power(lo, hi) / power(*ref)))


def test_telephone_channel_keeps_the_telephone_band_and_the_length() -> None:
    from whisperft.data.augment import telephone_channel

    white = (0.1 * np.random.default_rng(0).standard_normal(32_001)).astype(np.float32)  # odd: no halving is exact
    t = np.arange(16_000) / 16_000
    tones = (0.2 * sum(np.sin(2 * np.pi * f * t) for f in (500, 1000, 2000))).astype(np.float32)  # speech-like
    for codec in ("mulaw", "alaw"):
        line = telephone_channel(white, codec)
        assert line.dtype == np.float32 and line.shape == white.shape
        assert _band_db(line, 20, 200) < -40 and _band_db(line, 3600, 8000) < -40  # G.712's band, no more
        assert abs(_band_db(line, 500, 3000) - _band_db(white, 500, 3000)) < 0.5  # in band: the level kept
        passed = telephone_channel(tones, codec)
        assert np.corrcoef(tones, passed)[0, 1] > 0.99
        assert np.array_equal(passed, telephone_channel(tones, codec))  # deterministic: the bench relies on it


def test_g711_companding_has_256_levels_at_most_and_a_steady_snr() -> None:
    from whisperft.data.augment import g711

    wide = np.random.default_rng(1).uniform(-1.5, 1.5, 100_000)
    t = np.arange(8_000) / 8_000
    for codec in ("mulaw", "alaw"):
        coded = g711(wide, codec)
        assert len(np.unique(coded)) <= 256 and np.abs(coded).max() <= 1.0  # 8 bits, clipped at full scale
        for amplitude in (0.5, 0.05):  # 20 dB quieter, about the same SNR (38 dB): what companding is for
            tone = amplitude * np.sin(2 * np.pi * 440 * t)
            snr = 10 * np.log10(np.mean(tone**2) / np.mean((tone - g711(tone, codec)) ** 2))
            assert snr > 35, (codec, amplitude, snr)
    with pytest.raises(ValueError, match="codec"):
        g711(wide, "gsm")


def test_telephone_augmentation_comes_last_and_its_settings_are_checked(tmp_path: Path) -> None:
    from whisperft.config import load_config
    from whisperft.data.augment import Augmenter, AugmentSettings, telephone_channel
    from whisperft.errors import ConfigError

    settings = AugmentSettings(noise_prob=1, gain_prob=1, telephone_prob=1, telephone_codec="alaw")
    assert settings.needs_audio and AugmentSettings(telephone_prob=0.5).needs_audio
    augmenter = Augmenter(settings)
    ops = augmenter.draw(np.random.default_rng(0), 16_000)
    assert [name for name, _ in ops] == ["gain", "noise", "telephone"] and ops[-1][1] == 1.0  # A-law
    codecs = {Augmenter(AugmentSettings(telephone_prob=1)).draw(np.random.default_rng(i), 16_000)[0][1]
              for i in range(20)}  # fmt: skip
    assert codecs == {0.0, 1.0}  # random: µ-law and A-law both drawn
    tone = (0.3 * np.sin(2 * np.pi * 700 * np.arange(8_000) / 16_000)).astype(np.float32)
    only = [("telephone", 0.0)]
    assert np.array_equal(augmenter.apply(tone, only, np.random.default_rng(0)), telephone_channel(tone, "mulaw"))

    cfg = tmp_path / "t.yaml"
    cfg.write_text("data:\n  augment:\n    telephone_prob: 0.5\n")
    assert load_config(cfg).data.augment.telephone_prob == 0.5
    with pytest.raises(ConfigError, match=r"data\.augment\.telephone_prob: must be in \[0, 1\], got 2"):
        load_config(cfg, ["data.augment.telephone_prob=2"])
    with pytest.raises(ConfigError, match=r"data\.augment\.telephone_codec: expected 'mulaw' or 'alaw' or 'random'"):
        load_config(cfg, ["data.augment.telephone_codec=gsm"])


# ---------------------------------------------------------------- data mixing


class _Part:
    def __init__(self, n: int, tag: str) -> None:
        self.n, self.tag = n, tag

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int) -> tuple[str, int]:
        return self.tag, key


def test_a_two_source_mix_keeps_its_weights_exactly_and_walks_each_source() -> None:
    from whisperft.data.mixing import MixedDataset, exact_counts

    assert exact_counts([0.7, 0.2, 0.1], 33) == [23, 7, 3] and sum(exact_counts([1, 1, 1], 100)) == 100
    mix = MixedDataset([_Part(42, "cv"), _Part(6, "books")], [0.75, 0.25], seed=3)
    assert mix.counts == [36, 12]  # 75% / 25% of the 48 examples of an epoch
    for epoch in range(3):
        drawn = [mix[epoch * len(mix) + k] for k in range(len(mix))]
        assert sum(tag == "books" for tag, _ in drawn) == 12  # exact in every epoch, not on average
        books = [key for tag, key in drawn if tag == "books"]
        assert len({k % 6 for k in books[:6]}) == 6 or epoch > 0  # a small source is cycled, not sampled
    cv = [key for tag, key in (mix[k] for k in range(2 * len(mix))) if tag == "cv"]
    assert len({k % 42 for k in cv[:42]}) == 42  # no clip repeats before the whole source was seen
    again = MixedDataset([_Part(42, "cv"), _Part(6, "books")], [0.75, 0.25], seed=3)
    assert [again[k] for k in range(100)] == [mix[k] for k in range(100)]  # a resumed run draws the same


def test_training_on_a_mix_validates_per_source_and_combined(
    tmp_path: Path, store: Path, audio_store: Path, tiny_model: Path
) -> None:
    import json

    mix = [{"store": str(store), "weight": 3, "name": "cv"}, {"store": str(audio_store), "weight": 1, "name": "books"}]
    cfg = train_config(tmp_path / "m.yaml", tiny_model, store, tmp_path / "m", max_steps=2, eval_steps=2,
                       data={"mix": mix, "max_eval_samples": 4})  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "mixing 2 sources, examples per epoch: cv" in r.stderr
    evals = [json.loads(x) for x in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines() if "eval_wer" in x]
    assert {"eval_wer", "eval_wer_cv", "eval_wer_books", "eval_cer_books"} <= evals[-1].keys()
