from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperTokenizerFast

from whisperft.data.batches import EpochSampler, WhisperCollator
from whisperft.errors import UsageError
from whisperft.features import N_FRAMES
from whisperft.models.registry import load_model
from whisperft.models.whisper import check_language, decoder_prefix


def _item(labels: list[int], frames: int = 50) -> dict:
    return {"frames": np.zeros((frames, 80), np.float16), "pad": -0.5, "labels": labels}


def test_labels_and_decoder_inputs_line_up(tiny_model: Path) -> None:
    tok = WhisperTokenizerFast.from_pretrained(tiny_model)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_model)
    prefix = decoder_prefix(tok, model.config, "sv", "transcribe")
    assert tok.convert_ids_to_tokens(prefix) == ["<|sv|>", "<|transcribe|>", "<|notimestamps|>"]
    text = tok(" Hej då", add_special_tokens=False).input_ids
    sot = model.config.decoder_start_token_id
    collate = WhisperCollator(sot)
    # a start token at the front of a label is dropped, never doubled
    batch = collate([_item(prefix + text + [tok.eos_token_id]), _item([sot, *prefix, *text[:1], tok.eos_token_id])])
    assert batch["input_features"].shape == (2, 80, N_FRAMES)
    assert torch.all(batch["input_features"][:, :, 50:] == -0.5)
    labels = batch["labels"]
    assert labels[0].tolist() == prefix + text + [tok.eos_token_id]
    assert labels[1].tolist()[: len(prefix) + 2] == [*prefix, text[0], tok.eos_token_id]
    assert (labels[1, len(prefix) + 2 :] == -100).all()
    # what the model feeds its decoder: <|startoftranscript|> then the labels shifted right
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    dec = shift_tokens_right(labels, model.config.pad_token_id, sot)
    assert tok.convert_ids_to_tokens(dec[0, :4].tolist()) == [
        "<|startoftranscript|>",
        "<|sv|>",
        "<|transcribe|>",
        "<|notimestamps|>",
    ]
    assert (dec[:, 0] == sot).all() and (dec[:, 1] != sot).all()


def test_english_only_models_get_no_language_tokens(tiny_en_model: Path) -> None:
    tok = WhisperTokenizerFast.from_pretrained(tiny_en_model)
    model = load_model(str(tiny_en_model))
    assert tok.convert_ids_to_tokens(decoder_prefix(tok, model.config, "en", "transcribe")) == ["<|notimestamps|>"]
    assert check_language(model, "en").code == "en"
    with pytest.raises(UsageError, match="English-only"):
        check_language(model, "sv")


def test_epoch_sampler_is_a_function_of_seed_and_epoch() -> None:
    a, b = EpochSampler(20, 1), EpochSampler(20, 1)
    assert list(a) == list(b)
    a.set_epoch(1)
    # keys carry the epoch (epoch * n + index), so augmentation can draw per epoch; datasets take index = key % n
    assert [k % 20 for k in a] != list(b) and sorted(a) == list(range(20, 40))


def test_decoding_warns_when_clips_exceed_the_audio_context(
    tmp_path: Path, cv_folder: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A short-window model hears only the start of a longer clip: eval says so instead of scoring in silence."""
    from whisperft.data.store import FeatureStore
    from whisperft.models.decode import decode_split
    from whisperft.models.registry import load_processor
    from whisperft.models.whisper import apply_audio_context, context_frames
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    store = FeatureStore(prepare(PrepareRequest(str(cv_folder), "sv", str(tiny_model), tmp_path / "s", num_proc=1)).out)
    split = store.split("test")
    model = load_model(str(tiny_model))
    apply_audio_context(model, 1.0)  # every espeak sentence is longer than 1 s
    tok = load_processor(str(tiny_model)).tokenizer
    with caplog.at_level("WARNING", logger="whisperft"):
        decode_split(model, tok, split, "sv", max_new_tokens=2, n_frames=context_frames(model.config))
    assert f"{len(split)} of {len(split)} clips are longer than the model's 1 s audio context" in caplog.text
