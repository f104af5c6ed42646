"""A language Whisper was never taught (#20), end to end on the tiny model: Esperanto from espeak-ng,
prepared as ``epo``, trained under a proxy token (``language_token: auto``) or a new one (``new``), then
evaluated, transcribed with no ``--lang``, run in transformers' pipeline, exported and run in faster-whisper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from devkit.synth import convert
from tests.helpers import invoke, run_cli, train_config, write_tsv
from whisperft.languages import LANGUAGES
from whisperft.synth import speak

ESPERANTO = [
    "Hieraŭ mia patrino desegnis altan arbon en la parko.",
    "Morgaŭ nia najbaro trinkos fortan kafon en la kuirejo.",
    "Dimanĉe Petro aĉetas varman mantelon en la lernejo.",
    "Ĉiutage la studentoj legas longan leteron sur la strato.",
    "Nun la knabino serĉas sian telefonon hejme.",
    "Vespere la kuracisto manĝas bongustan supon en la urbo.",
    "Matene mia amiko skribas mallongan poemon en la biblioteko.",
    "Hieraŭ la infanoj manĝis dolĉan kukon en la ĝardeno.",
    "Morgaŭ Maria aĉetos freŝan panon en la vendejo.",
    "Hodiaŭ ŝia avino trinkas varman teon ĉe la stacidomo.",
]


@pytest.fixture(scope="module")
def eo_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Common Voice style folder of Esperanto (48 kHz mp3): 8 clips to train on, 2 to validate."""
    root = tmp_path_factory.mktemp("cv-eo") / "eo"
    rows = []
    for i, text in enumerate(ESPERANTO):
        wav = speak(text, root / "wav" / f"{i}.wav", voice="eo")
        rows.append((convert(wav, root / "clips" / f"eo_{i}.mp3", rate=48000).name, text))
    write_tsv(root / "train.tsv", rows[:8])
    write_tsv(root / "dev.tsv", rows[8:])
    return root


@pytest.fixture(scope="module")
def eo_store(tmp_path_factory: pytest.TempPathFactory, eo_clips: Path, tiny_model: Path) -> Path:
    out = tmp_path_factory.mktemp("store-eo") / "eo"
    r = invoke("prepare", "--lang", "epo", "--source", str(eo_clips), "--model", str(tiny_model), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "--lang epo is esperanto (eo), which Whisper has no token for" in " ".join(r.output.split())
    assert json.loads((out / "store.json").read_text())["language"] == "eo"
    return out


def _train(root: Path, model: Path, store: Path, *overrides: str) -> Path:
    cfg = train_config(root / "eo.yaml", model, store, root / "run", data={"eval_split": "validation"},
                       max_steps=6, eval_steps=6, save_steps=6)  # fmt: skip
    r = run_cli("train", str(cfg), "language=eo", *overrides)
    assert r.returncode == 0, r.stderr
    return root / "run"


@pytest.fixture(scope="module")
def proxy_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, eo_store: Path) -> Path:
    return _train(tmp_path_factory.mktemp("eo-proxy"), tiny_model, eo_store)


def _transcribe_json(model: Path, clip: Path, out: Path, *args: str) -> dict:
    r = invoke("transcribe", str(clip), "--model", str(model), "--format", "json", "--output-dir", str(out), *args)
    assert r.exit_code == 0, r.output
    return json.loads((out / f"{clip.stem}.json").read_text())


def test_proxy_token_holds_from_train_to_faster_whisper(proxy_run: Path, eo_clips: Path, tmp_path: Path) -> None:
    final = proxy_run / "final"
    proxy = yaml.safe_load((final / "config.yaml").read_text())["language_token"]
    assert proxy not in ("auto", "new", "eo") and len(proxy) in (2, 3)  # chosen from data: a Whisper language
    # the folder knows its language; clients that know only Whisper's tokens get the proxy
    assert json.loads((final / "config.json").read_text())["whisperft_language"] == {"language": "eo", "token": proxy}
    assert json.loads((final / "generation_config.json").read_text())["language"] == proxy
    card = (final / "README.md").read_text()
    assert yaml.safe_load(card.split("---")[1])["language"] == ["eo"]
    assert f'"language": "{proxy}"' in card and "Whisper has no token for Esperanto" in card

    clip = eo_clips / "clips" / "eo_0.mp3"
    own = _transcribe_json(final, clip, tmp_path / "t1")
    assert own["language"] == "eo" and own["text"]
    detected = _transcribe_json(final, clip, tmp_path / "t2", "--lang", "auto")
    assert detected["language"] != proxy  # detection never reports the proxy as the truth

    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(final), device="cpu")
    plain = asr(str(clip), generate_kwargs={"max_new_tokens": 20})["text"]
    named = asr(str(clip), generate_kwargs={"max_new_tokens": 20, "language": proxy})["text"]
    assert plain == named and plain.strip()

    ct2 = tmp_path / "ct2"
    r = invoke("export", str(final), str(ct2), "--quantization", "float32", "--verify-audio", str(clip))
    assert r.exit_code == 0, r.output
    assert json.loads((ct2 / "config.json").read_text())["whisperft_language"] == {"language": "eo", "token": proxy}
    fast = _transcribe_json(ct2, clip, tmp_path / "t3")
    assert fast["language"] == "eo" and fast["text"]
    back = tmp_path / "back"  # and back to transformers: the language travels
    assert invoke("import-ct2", str(ct2), str(back)).exit_code == 0
    assert json.loads((back / "config.json").read_text())["whisperft_language"] == {"language": "eo", "token": proxy}
    assert json.loads((back / "generation_config.json").read_text())["language"] == proxy

    from faster_whisper import WhisperModel

    fw = WhisperModel(str(ct2), device="cpu", compute_type="float32")
    segments, info = fw.transcribe(str(clip), language=proxy, beam_size=1, without_timestamps=True)
    assert info.language == proxy and " ".join(s.text.strip() for s in segments).strip()


def test_eval_uses_the_models_language(proxy_run: Path, eo_store: Path, tmp_path: Path) -> None:
    r = invoke("eval", "--model", str(proxy_run / "final"), "--data", str(eo_store), "--out", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "metrics.json").read_text())["language"] == "eo"
    r = invoke("eval", "--model", str(proxy_run / "final"), "--data", str(eo_store), "--lang", "gn")
    assert r.exit_code == 2 and "no token for guarani" in r.output


def test_a_new_token_is_added_and_used(tmp_path: Path, tiny_model: Path, eo_store: Path, eo_clips: Path) -> None:
    run = _train(tmp_path, tiny_model, eo_store, "language_token=new", "train.max_steps=2")
    final = run / "final"
    assert yaml.safe_load((final / "config.yaml").read_text())["language_token"] == "new"
    config = json.loads((final / "config.json").read_text())
    fallback = config["whisperft_language"].pop("fallback")  # the proxy its row started from, for faster-whisper
    assert config["whisperft_language"] == {"language": "eo", "token": "eo"} and config["vocab_size"] == 51866
    assert fallback in LANGUAGES
    gen = json.loads((final / "generation_config.json").read_text())
    assert gen["language"] == "<|eo|>" and gen["lang_to_id"]["<|eo|>"] == 51865
    clip = eo_clips / "clips" / "eo_0.mp3"
    own = _transcribe_json(final, clip, tmp_path / "t")
    assert own["language"] == "eo"

    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(final), device="cpu")
    plain = asr(str(clip), generate_kwargs={"max_new_tokens": 20})["text"]
    assert plain == asr(str(clip), generate_kwargs={"max_new_tokens": 20, "language": "<|eo|>"})["text"]

    # faster-whisper knows only Whisper's tokens: export moves the trained <|eo|> row into its fallback's slot
    ct2 = tmp_path / "ct2"
    r = invoke("export", str(final), str(ct2), "--quantization", "float32", "--verify-audio", str(clip))
    assert r.exit_code == 0, r.output
    assert json.loads((ct2 / "config.json").read_text())["whisperft_language"] == {"language": "eo", "token": fallback}
    assert "<|eo|>" not in (ct2 / "tokenizer.json").read_text()
    card = (final / "README.md").read_text()
    assert '"language": "<|eo|>"' in card and f'language="{fallback}"' in card
    assert _transcribe_json(ct2, clip, tmp_path / "t2")["language"] == "eo"
    from faster_whisper import WhisperModel

    segments, info = WhisperModel(str(ct2), device="cpu", compute_type="float32").transcribe(
        str(clip), language=fallback, beam_size=1, without_timestamps=True
    )
    assert info.language == fallback and list(segments)
    r = invoke("eval", "--model", str(ct2), "--data", str(eo_store), "--out", str(tmp_path / "metrics.json"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "metrics.json").read_text())["language"] == "eo"


def test_add_language_token_copies_the_proxy_row(tiny_model: Path) -> None:
    from whisperft.languages import get_language
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import add_language_token

    model, tok = load_model(str(tiny_model)), load_processor(str(tiny_model)).tokenizer
    new_id = add_language_token(model, tok, get_language("gn"), "es")
    weight = model.get_input_embeddings().weight
    assert new_id == 51865 and weight.shape[0] == 51866 and len(tok) == 51866
    assert (weight[new_id] == weight[tok.convert_tokens_to_ids("<|es|>")]).all()
    assert model.proj_out.weight.data_ptr() == weight.data_ptr()  # the output projection shares the row
    assert tok.encode("<|gn|>", add_special_tokens=False) == [new_id]
    assert add_language_token(model, tok, get_language("gn"), "es") == new_id and len(tok) == 51866


def test_folding_an_added_token_keeps_every_transcript(tiny_model: Path) -> None:
    """Export's fold: the trained row of <|gn|> moves into <|es|>'s slot; decoding is unchanged."""
    import torch

    from whisperft.languages import ModelLanguage, get_language
    from whisperft.models.decode import generate_ids
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import add_language_token, fold_added_token, own_language, set_language

    model, tok = load_model(str(tiny_model)).eval(), load_processor(str(tiny_model)).tokenizer
    gn = get_language("gn")
    new_id = add_language_token(model, tok, gn, "es")
    set_language(model, "gn", own=ModelLanguage(gn, "gn", fallback="es"))
    with torch.no_grad():  # as if trained: the row is no longer the proxy's
        model.get_input_embeddings().weight[new_id] += torch.randn_like(model.get_input_embeddings().weight[new_id])
    feats = torch.randn(3, model.config.num_mel_bins, 2 * model.config.max_source_positions)
    before = generate_ids(model, feats, None, max_new_tokens=12)
    tokenizer_json = json.loads(tok.backend_tokenizer.to_str())
    assert fold_added_token(model, tokenizer_json) == ModelLanguage(gn, "es")
    after = generate_ids(model, feats, None, max_new_tokens=12)
    assert model.generation_config.language == "es" and own_language(model) == ModelLanguage(gn, "es")
    es = tok.convert_tokens_to_ids("<|es|>")  # prompted with <|es|>, which now holds <|gn|>'s row
    assert torch.equal(torch.where(before == new_id, es, before), after) and before.shape[1] > 2
    assert model.config.vocab_size == 51865 and "<|gn|>" not in json.dumps(tokenizer_json)


def test_serve_starts_on_the_models_language_and_still_compares(proxy_run: Path, tiny_model: Path) -> None:
    from whisperft.serve import Loaded, language_for, page_languages
    from whisperft.transcribe.load import load_engine

    tuned = Loaded("tuned", load_engine(str(proxy_run / "final")))
    stock = Loaded("stock", load_engine(str(tiny_model)))
    choices, first = page_languages([tuned, stock], None)
    assert first == "eo" and choices[:2] == ["auto", "eo"]
    assert page_languages([stock, tuned], None)[1] == "auto" and page_languages([stock], "Swedish")[1] == "sv"
    # the stock model has no Esperanto token: it decodes in its own way instead of failing the page
    assert language_for(tuned, "eo") == "eo" and language_for(stock, "eo") is None
    assert language_for(stock, "sv") == "sv"
