"""End to end through the real ``whisperft`` command: prepare -> train -> resume -> eval -> transcribe."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.helpers import invoke, run_cli
from tests.helpers import learning_config as _config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(trained_run: Path) -> Path:
    return trained_run


def test_learning_drives_training_wer_down(trained: Path, store: Path, tiny_model: Path, tmp_path: Path) -> None:
    before = run_cli("eval", "--model", str(tiny_model), "--data", str(store), "--split", "train",
                     "--out", str(tmp_path / "before.json"))  # fmt: skip
    assert before.returncode == 0, before.stderr
    start = json.loads((tmp_path / "before.json").read_text())["wer"]
    after = run_cli("eval", "--model", str(trained), "--data", str(store), "--split", "train",
                    "--out", str(tmp_path / "after.json"))  # fmt: skip
    assert after.returncode == 0, after.stderr
    end = json.loads((tmp_path / "after.json").read_text())["wer"]
    assert start >= 0.95
    assert end <= 0.35, f"training-set WER {start:.2f} -> {end:.2f}"


def test_final_model_folder_is_complete(trained: Path) -> None:
    final = trained / "final"
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "config.yaml",
                 "metrics.json", "processor_config.json"):  # fmt: skip
        assert (final / name).is_file(), name
    gen = json.loads((final / "generation_config.json").read_text())
    assert gen["language"] == "sv" and gen["task"] == "transcribe"
    assert gen.get("forced_decoder_ids") is None
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["steps"] == 200 and metrics["best_step"] in (100, 200)
    assert len(list((trained / "checkpoints").glob("step-*"))) == 2


def test_eval_writes_metrics_and_predictions(trained: Path, store: Path, tmp_path: Path) -> None:
    out = tmp_path / "m" / "metrics.json"
    r = run_cli("eval", "--model", str(trained), "--data", str(store), "--out", str(out), "--batch-size", "3")
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    for key in (
        "wer",
        "cer",
        "wer_normalized",
        "cer_normalized",
        "num_utterances",
        "audio_seconds",
        "model",
        "language",
    ):
        assert key in m
    assert m["num_utterances"] == 2 and m["split"] == "test" and m["language"] == "sv"
    preds = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 2 and {"reference", "hypothesis", "word_errors", "stop"} <= preds[0].keys()
    assert "WER" in r.stdout
    # issue #18: the run's eval.max_new_tokens (24) without --max-new-tokens; the normalized counts; the
    # utterances whose decoding was stopped, counted in metrics.json and shown in the table
    assert m["max_new_tokens"] == 24 and m["token_bound"] is True and m["notes"] == []
    assert m["hits_normalized"] <= m["reference_words_normalized"] == sum(len(p["reference"].split()) for p in preds)
    assert m["token_limit_hits"] + m["repetition_stops"] == sum(p["stop"] is not None for p in preds)
    assert "runaway" in r.stdout
    r = run_cli("eval", "--model", str(trained), "--data", str(store), "--out", str(out), "--max-new-tokens", "2")
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    preds = [json.loads(line) for line in (out.parent / "predictions.jsonl").read_text().splitlines()]
    assert m["max_new_tokens"] == 2 and all(len(p["hypothesis"].split()) <= 2 for p in preds)
    assert m["token_limit_hits"] == sum(p["stop"] == "limit" for p in preds)


def test_eval_on_a_raw_source(trained: Path, cv_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    r = run_cli("eval", "--model", str(trained), "--data", str(cv_folder), "--lang", "sv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["num_utterances"] == 2


def test_transcribe_to_subtitles(trained: Path, wavs: list[tuple[Path, str]], long_wav: Path, tmp_path: Path) -> None:
    clip = wavs[0][0]
    # the tiny model learned without timestamp tokens, so it gets one segment per chunk
    r = run_cli("transcribe", str(clip), str(long_wav), "--model", str(trained), "--lang", "sv", "--format", "srt",
                "--output-dir", str(tmp_path), "--no-timestamps")  # fmt: skip
    assert r.returncode == 0, r.stderr
    srt = (tmp_path / "long.srt").read_text()
    assert srt.startswith("1\n00:00:") and " --> " in srt
    assert "\n3\n00:00:" in srt  # 70 s of speech: at least three chunks
    assert (tmp_path / f"{clip.stem}.srt").is_file()
    r = run_cli("transcribe", str(clip), "--model", str(trained), "--lang", "sv", "--format", "json",
                "--output-dir", str(tmp_path), "--no-timestamps")  # fmt: skip
    data = json.loads((tmp_path / f"{clip.stem}.json").read_text())
    assert data["language"] == "sv" and data["segments"] and {"start", "end", "text"} <= data["segments"][0].keys()
    r = run_cli("transcribe", str(clip), "--model", str(trained), "--lang", "sv", "--no-timestamps")
    assert r.returncode == 0 and r.stdout.strip()
    words = set(wavs[0][1].lower().replace(",", "").replace(".", "").split())
    assert words & set(r.stdout.lower().replace(",", "").replace(".", "").split())
    # --lang auto on a fine-tune for one language: its detection leans to that language (issue #33), said once
    res = invoke("transcribe", str(clip), "--model", str(trained), "--lang", "auto", "--no-timestamps")
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert said.count("was fine-tuned for swedish only, and its --lang auto tends to detect swedish; pass --lang") == 1


def test_interrupted_run_resumes_to_the_same_weights(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    kw = {"model": tiny_model, "store": store, "max_steps": 12, "eval_steps": 100, "save_steps": 3, "batch_size": 4,
          "gradient_accumulation_steps": 2}  # fmt: skip
    straight = _config(tmp_path / "a.yaml", output_dir=str(tmp_path / "a"), **kw)
    assert run_cli("train", str(straight)).returncode == 0

    cfg = _config(tmp_path / "b.yaml", output_dir=str(tmp_path / "b"), **kw)
    exe = Path(sys.executable).with_name("whisperft")
    proc = subprocess.Popen([str(exe), "train", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (tmp_path / "b" / "checkpoints" / "step-0000003").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "interrupted at step" in err and "Traceback" not in err
    assert not (tmp_path / "b" / "final").exists()

    resumed = run_cli("train", str(cfg))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(tmp_path / "a" / "checkpoints" / "step-0000012" / "model.safetensors")
    b = load_file(tmp_path / "b" / "checkpoints" / "step-0000012" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k
    assert "resuming from" in resumed.stderr


def test_two_processes_with_torchrun(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2: same optimizer steps over twice the data, main process writes, eval gathered."""
    cfg = _config(tmp_path / "ddp.yaml", model=tiny_model, store=store, output_dir=str(tmp_path / "ddp"), max_steps=4,
                  eval_steps=4, save_steps=2, batch_size=4, data={"eval_split": "train"})  # fmt: skip
    r = subprocess.run(_torchrun(cfg), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "ddp" / "final" / "metrics.json").read_text())
    assert metrics["steps"] == 4
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    ckpt = tmp_path / "ddp" / "checkpoints" / "step-0000004"
    assert (ckpt / "random_states_0.pkl").is_file() and (ckpt / "random_states_1.pkl").is_file()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    # 16 clips over 2 processes x batch 4: an epoch is 2 steps of 8 clips, so step 4 ends the second epoch
    assert (state["epoch"], state["batches_in_epoch"]) == (1, 2)
    logs = (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()
    evals = [json.loads(x) for x in logs if "eval_wer" in x]
    assert [e["step"] for e in evals] == [0, 4]  # before training and at the end, written by the main process

    # gathered eval equals a single-process eval of the same model on the same data
    single = tmp_path / "single.json"
    r = run_cli("eval", "--model", str(tmp_path / "ddp" / "final"), "--data", str(store), "--split", "train",
                "--max-new-tokens", "24", "--out", str(single))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(single.read_text())["wer"] == pytest.approx(evals[-1]["eval_wer"])


def _torchrun(cfg: Path) -> list[str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = Path(sys.executable).with_name("torchrun")
    return [str(torchrun), "--nproc_per_node", "2", "--master_port", str(port), "-m", "whisperft.cli", "train",
            str(cfg), "--no-progress"]  # fmt: skip


def test_two_process_run_resumes_after_kill_9(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    import os

    kw = {"model": tiny_model, "store": store, "max_steps": 6, "eval_steps": 100, "save_steps": 2, "batch_size": 4}
    straight = _config(tmp_path / "s.yaml", output_dir=str(tmp_path / "s"), **kw)
    r = subprocess.run(_torchrun(straight), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]

    cfg = _config(tmp_path / "k.yaml", output_dir=str(tmp_path / "k"), **kw)
    proc = subprocess.Popen(
        _torchrun(cfg), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while not (tmp_path / "k" / "checkpoints" / "step-0000002").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
    proc.wait()
    r = subprocess.run(_torchrun(cfg), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stderr
    a = load_file(tmp_path / "s" / "checkpoints" / "step-0000006" / "model.safetensors")
    b = load_file(tmp_path / "k" / "checkpoints" / "step-0000006" / "model.safetensors")
    for k in a:
        assert (a[k] - b[k]).abs().max() < 1e-5, k


def test_eval_and_transcribe_default_to_the_newest_run(
    trained: Path, store: Path, wavs: list[tuple[Path, str]], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    for name in ("older", "newer", "unfinished"):
        shutil.copytree(trained / "final", work / "runs" / name / "final")
    os.utime(work / "runs" / "older" / "final" / "_COMPLETE", (1e9, 1e9))
    (work / "runs" / "unfinished" / "final" / "_COMPLETE").unlink()  # never chosen: not finished
    r = run_cli("transcribe", str(wavs[0][0]), "--lang", "sv", "--no-timestamps", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "model: runs/newer/final" in r.stderr and r.stdout.strip()
    r = run_cli("eval", "--data", str(store), "--out", str(tmp_path / "m.json"), cwd=work)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["model"] == "runs/newer/final"


def test_without_model_or_run_one_line_says_what_to_pass(wavs: list[tuple[Path, str]], tmp_path: Path) -> None:
    for args in (("transcribe", str(wavs[0][0])), ("eval", "--data", str(tmp_path))):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "--model bundled:base" in r.stderr
        assert "Traceback" not in r.stderr


def test_an_empty_evaluation_split_is_an_error_not_a_wer(
    tiny_model: Path, wavs: list[tuple[Path, str]], tmp_path: Path
) -> None:
    """A split whose every row was filtered out: eval and train say so in one line, unless evaluation is off."""
    from devkit.synth import convert
    from tests.helpers import write_tsv

    cv = tmp_path / "cv"
    for i, (wav, _) in enumerate(wavs[:4]):
        convert(wav, cv / "clips" / f"c{i}.mp3", rate=48000)
    write_tsv(cv / "train.tsv", [(f"c{i}.mp3", wavs[i][1]) for i in range(4)])
    write_tsv(cv / "dev.tsv", [("gone.mp3", "Saknas.")])
    write_tsv(cv / "test.tsv", [("gone.mp3", "Saknas.")])
    out = tmp_path / "store"
    r = run_cli("prepare", "--lang", "sv", "--source", str(cv), "--model", str(tiny_model), "--out", str(out))
    assert r.returncode == 1 and "kept no row of test (1 read): most were missing_file" in r.stderr, r.stderr
    assert (out / "_COMPLETE").is_file()  # the store and its report are written all the same

    r = invoke("eval", "--model", str(tiny_model), "--data", str(out), "--split", "test")
    assert r.exit_code == 2 and "no utterances in test" in r.output
    assert len(r.output.strip().splitlines()) == 1 and not (Path.cwd() / "predictions.jsonl").exists()

    cfg = _config(tmp_path / "t.yaml", model=tiny_model, store=out, output_dir=str(tmp_path / "run"), max_steps=2,
                  eval_steps=2, save_steps=2, batch_size=2)  # fmt: skip
    r = run_cli("train", str(cfg))
    assert r.returncode == 2 and "data.eval_split" in r.stderr and "null" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run" / "checkpoints").exists()
    r = run_cli("train", str(cfg), "data.eval_split=null")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "run" / "final" / "metrics.json").read_text())
    assert metrics["final_from"] == "last (step 2)" and metrics["best_wer"] is None


def _pipeline_texts(model: Path, clip: Path, long_audio: Path, window_s: int) -> tuple[str, str]:
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(model), device="cpu")
    short = asr(str(clip), generate_kwargs={"max_new_tokens": 40})["text"]
    # long audio in the pipeline's chunked mode, chunks of the model's window (the recipe's models,
    # trained without timestamp tokens, cannot drive Whisper's sequential long-form decoding)
    long = asr(str(long_audio), chunk_length_s=window_s, batch_size=8, generate_kwargs={"max_new_tokens": 40})
    return short, long["text"]


@pytest.mark.parametrize("context", [4, None], ids=["4s-window", "30s-window"])
def test_saved_models_run_in_the_transformers_pipeline(
    context: int | None, store: Path, tiny_model: Path, trained: Path, wavs: list[tuple[Path, str]],
    long_wav: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """What train saves is self-consistent: the processor's window is the encoder's, so transformers' own
    pipeline transcribes short clips and long audio with it."""
    if context == 4:
        run = trained  # 200 steps at a 4 s audio context
    else:
        cfg = _config(tmp_path / "c.yaml", model=tiny_model, store=store, output_dir=str(tmp_path / "run"),
                      audio_context_s=None, max_steps=2, eval_steps=2, save_steps=2, batch_size=2)  # fmt: skip
        r = run_cli("train", str(cfg), "data.max_eval_samples=2", "eval.max_new_tokens=8")
        assert r.returncode == 0, r.stderr
        run = tmp_path / "run"
    final = run / "final"
    positions = json.loads((final / "config.json").read_text())["max_source_positions"]
    proc = json.loads((final / "processor_config.json").read_text())
    assert proc["feature_extractor"]["chunk_length"] * 100 == 2 * positions == 2 * 50 * (context or 30)
    clip, text = wavs[0]
    short, long = _pipeline_texts(final, clip, long_wav, context or 30)
    assert isinstance(short, str) and isinstance(long, str)
    if context == 4:  # the trained model transcribes its training sentence, and the 70 s file to the end
        words = set(text.lower().replace(",", "").replace(".", "").split())
        assert words & set(short.lower().replace(",", "").replace(".", "").split()), short
        assert len(long.split()) >= 25, long  # many windows decoded, not one (4 s hold about 6 words)

    # and after export, in faster-whisper (which pads every window to 30 s: a 4 s model is exported at 30 s)
    from faster_whisper import WhisperModel

    r = run_cli("export", str(final), str(tmp_path / "ct2"), "--quantization", "float32", "--verify-audio", str(clip),
                "--lang", "sv")  # fmt: skip
    assert r.returncode == 0, r.stderr
    fw = WhisperModel(str(tmp_path / "ct2"), device="cpu", compute_type="float32")
    for audio in (clip, long_wav):
        segments, info = fw.transcribe(str(audio), language="sv", beam_size=1, max_new_tokens=40)
        segments = list(segments)
        assert info.duration > 0 and info.language == "sv" and any(seg.text.strip() for seg in segments)


def test_curves_and_tensorboard_come_out_of_a_run(trained: Path) -> None:
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    png = Image.open(trained / "curves.png")
    assert png.format == "PNG" and png.size[1] > png.size[0]  # three panels stacked
    assert png.info["Description"] == "training loss, learning rate, validation WER"
    assert len(set(png.convert("L").getdata())) > 20  # drawn, not blank
    events = EventAccumulator(str(next((trained / "tensorboard").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/learning_rate", "eval/wer", "eval/cer"} <= set(tags)
    assert [e.step for e in events.Scalars("eval/wer")] == [0, 100, 200]  # step 0: before training
    assert len(events.Scalars("train/loss")) == 20  # logging_steps 10 over 200 steps
    history = json.loads((trained / "final" / "metrics.json").read_text())["history"]
    wer = {r["step"]: r["eval_wer"] for r in history if "eval_wer" in r}
    assert [round(e.value, 5) for e in events.Scalars("eval/wer")] == [round(wer[s], 5) for s in (0, 100, 200)]


def test_plot_marks_the_best_checkpoint(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from whisperft.train.curves import PANELS, plot_curves

    history = [{"step": s, "loss": 3 / s, "lr": 1e-5} for s in range(1, 41)]
    history += [{"step": 20, "eval_wer": 0.4}, {"step": 40, "eval_wer": 0.5}]
    captured = []
    original = plt.close
    plt.close = lambda fig: captured.append(fig)  # keep the figure to look inside
    try:
        assert plot_curves(history, 20, tmp_path / "curves.png") == list(PANELS)
    finally:
        plt.close = original
    axes = captured[0].axes
    assert [ax.get_title() for ax in axes] == list(PANELS)
    assert "best: step 20, WER 40.0%" in [t.get_text() for t in axes[2].get_legend().get_texts()]
    assert list(axes[0].lines[0].get_xdata()) == list(range(1, 41))


def test_report_to_wandb_without_wandb_is_a_config_error(store: Path, tiny_model: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path / "w.yaml", model=tiny_model, store=store, output_dir=str(tmp_path / "run"), max_steps=2)
    r = run_cli("train", str(cfg), "train.report_to=wandb")
    assert r.returncode == 2 and "train.report_to: wandb needs the wandb package" in r.stderr
    r = run_cli("train", str(cfg), "train.report_to=comet")
    assert r.returncode == 2 and "train.report_to" in r.stderr


def test_the_model_card_parses_and_carries_the_measured_wer(trained: Path) -> None:
    from huggingface_hub import ModelCard

    final = trained / "final"
    card = ModelCard.load(final / "README.md")
    data = card.data.to_dict()
    assert data["language"] == ["sv"] and data["license"] == "apache-2.0"
    assert data["pipeline_tag"] == "automatic-speech-recognition" and "whisper" in data["tags"]
    assert "base_model" not in data  # the tiny test model is a local folder, not a Hub model
    metrics = json.loads((final / "metrics.json").read_text())
    history = {r["step"]: r for r in metrics["history"] if "eval_wer" in r}
    (result,) = card.data.eval_results
    assert (result.task_type, result.metric_type, result.dataset_split) == (
        "automatic-speech-recognition",
        "wer",
        "train",
    )
    assert result.metric_value == round(100 * metrics["best_wer"], 2)
    before, after = history[0], history[metrics["best_step"]]
    assert f"| {100 * before['eval_wer']:.2f}% |" in card.text and f"| {100 * after['eval_wer']:.2f}% |" in card.text
    assert "![training loss, learning rate and validation WER](curves.png)" in card.text
    assert (final / "curves.png").read_bytes() == (trained / "curves.png").read_bytes()


def test_card_names_the_base_model_and_hub_dataset() -> None:
    from huggingface_hub import ModelCardData

    from whisperft.config import config_from_dict
    from whisperft.train.card import metadata

    cfg = config_from_dict({"model": "small", "language": "sv", "data": {"store": "data/sv"}})
    meta = metadata(cfg, "hub:google/fleurs:sv_se", {"after_wer": 0.3214})
    assert meta["base_model"] == "openai/whisper-small" and meta["datasets"] == ["google/fleurs"]
    (result,) = ModelCardData(**meta).eval_results
    assert (result.dataset_type, result.metric_value) == ("google/fleurs", 32.14)
    assert "model-index" not in metadata(cfg, "Common Voice folder cv", {"after_wer": None})
    local = metadata(cfg, "Common Voice folder /home/me/data/cv-corpus/sv-SE", {"after_wer": 0.5})
    assert local["model-index"][0]["results"][0]["dataset"]["name"] == "Common Voice folder sv-SE"  # no home path


def test_eval_report_shows_where_the_errors_are(trained: Path, store: Path, tmp_path: Path) -> None:
    import base64
    import re

    from whisperft.evaluate.report import error_counts
    from whisperft.metrics import Utterance

    out = tmp_path / "e" / "metrics.json"
    r = run_cli("eval", "--model", str(trained), "--data", str(store), "--split", "test", "--max-new-tokens", "24",
                "--out", str(out), "--report")  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = (out.parent / "report.html").read_text()
    for section in ("worst", "substitutions", "deletions", "duration"):
        assert f'id="{section}"' in page
    utts = [Utterance(**json.loads(x)) for x in (out.parent / "predictions.jsonl").read_text().splitlines()]
    metrics = json.loads(out.read_text())
    counts = error_counts(utts)  # the report's alignment agrees with the scorer's totals
    assert sum(counts["substitute"].values()) == metrics["substitutions"]
    assert sum(counts["delete"].values()) == metrics["deletions"]
    assert sum(counts["insert"].values()) == metrics["insertions"]
    worst = max(utts, key=lambda u: u.word_errors)
    assert worst.id in page
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert png.startswith(b"\x89PNG")


def test_eval_bounds_a_looping_model(tiny_model: Path, store: Path) -> None:
    """Issue #18, item 8: a model that does not know the language (random weights) loops; each utterance
    stops at its duration's token limit or at the repetition rule, exactly where the rule cuts the unbounded
    decode, and eval reports it. The progress callbacks get the total first."""
    import torch

    from whisperft.data.store import FeatureStore
    from whisperft.evaluate.request import EvalRequest
    from whisperft.evaluate.run import run_eval
    from whisperft.features import pad_features
    from whisperft.models.decode import generate_decoded, generate_ids
    from whisperft.models.registry import load_model, load_processor
    from whisperft.text import runaway_stop, token_limit

    starts: list[int] = []
    done: list[int] = []
    request = EvalRequest(str(tiny_model), str(store), split="test", out=None)
    result = run_eval(request, progress=done.append, on_start=starts.append)
    n = result.num_utterances
    assert starts == [n] and sum(done) == n
    assert result.extra["token_limit_hits"] + result.extra["repetition_stops"] == n
    split = FeatureStore(store).split("test")
    model, tok = load_model(str(tiny_model)).eval(), load_processor(str(tiny_model)).tokenizer
    feats = pad_features([(split.frames(i), float(split.pad_value[i])) for i in range(n)])
    limits = [min(token_limit(float(split.duration[i])), 60) for i in range(n)]
    bounded = generate_decoded(model, tok, feats, "sv", limits)
    with torch.inference_mode():
        full = generate_ids(model, feats, "sv", max_new_tokens=60).tolist()  # no stopping criterion
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    for row, limit, got in zip(full, limits, bounded, strict=True):
        content = [t for t in row if t < eot]
        kept, why = runaway_stop(content, limit)
        assert (got.text, got.stop) == (tok.decode(content[:kept]).strip(), why) and why is not None


def test_undefined_rates_read_n_a_in_the_report() -> None:
    from whisperft.evaluate.report import render_report, wer_by_duration
    from whisperft.metrics import score

    metrics, utts = score(["a", "b"], ["...", "?!"], ["hej", ""], "sv", [1.0, 3.0])
    assert metrics["wer"] is not None and metrics["wer_normalized"] is None
    summary = {**metrics, "num_utterances": 2, "audio_seconds": 4.0, "model": "m", "split": "test", "language": "sv"}
    page = render_report(summary, utts)
    assert "n/a" in page and "note: wer_normalized: null" in page
    empty = score(["a"], [""], ["hej"], "sv", [1.0])[1]
    assert wer_by_duration(empty) == [("0–2 s", 1, None)]


def test_alignment_marks_each_kind_of_error() -> None:
    from whisperft.evaluate.report import _aligned
    from whisperft.metrics import align_words

    assert align_words("a b c d", "a x c d e") == [
        ("equal", ["a"], ["a"]), ("substitute", ["b"], ["x"]), ("equal", ["c", "d"], ["c", "d"]),
        ("insert", [], ["e"]),
    ]  # fmt: skip
    assert align_words("a b", "") == [("delete", ["a", "b"], [])]
    ref, hyp = _aligned("the cat <sat>", "the hat")
    assert ref == 'the <span class="sub">cat</span> <span class="del">&lt;sat&gt;</span>'
    assert hyp == 'the <span class="sub">hat</span>'
