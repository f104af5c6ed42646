"""Claim: the training loop runs at >=0.9x the throughput of a bare PyTorch forward/backward/AdamW loop
on the same model and batches (whisperft's own overhead <= 10%)."""

from __future__ import annotations

import json
import shutil
import time

import torch

from benchmarks.common import DATA, cv_corpus, emit, setup

STEPS, WINDOW, BATCH, CONTEXT_S = 20, 5, 4, 6.0


def bare_loop(store_dir: str, model_path: str) -> float:
    """Steps per second of the plainest loop: pre-collated batches, forward, backward, clip, AdamW."""
    from whisperft.data.batches import StoreDataset, WhisperCollator
    from whisperft.data.store import FeatureStore
    from whisperft.models.registry import load_model, load_processor
    from whisperft.models.whisper import apply_audio_context, context_frames, decoder_prefix

    torch.manual_seed(0)
    model = load_model(model_path)
    apply_audio_context(model, CONTEXT_S)
    tok = load_processor(model_path).tokenizer
    split = FeatureStore(store_dir).split("train")
    ds = StoreDataset(split, decoder_prefix(tok, model.config, "sv", "transcribe"), tok.eos_token_id,
                      context_frames(model.config))  # fmt: skip
    collate = WhisperCollator(model.config.decoder_start_token_id, context_frames(model.config))
    batches = [collate([ds[(s * BATCH + j) % len(ds)] for j in range(BATCH)]) for s in range(STEPS)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, foreach=True)
    model.train()
    rates, t0 = [], time.perf_counter()
    for step, batch in enumerate(batches, start=1):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % WINDOW == 0:
            now = time.perf_counter()
            if step > WINDOW:  # the first window warms up
                rates.append(WINDOW / (now - t0))
            t0 = now
    return max(rates)


def ours(store_dir: str, model_path: str) -> float:
    from whisperft.config import config_from_dict
    from whisperft.train.loop import train

    out = DATA / "train-bench"
    shutil.rmtree(out, ignore_errors=True)
    cfg = config_from_dict(
        {
            "model": {"name": model_path, "audio_context_s": CONTEXT_S},
            "language": "sv",
            "data": {"store": store_dir, "eval_split": None, "num_workers": 1},
            "train": {"output_dir": str(out), "max_steps": STEPS, "batch_size": BATCH, "learning_rate": 1e-5,
                      "warmup_steps": 0, "lr_scheduler": "constant", "logging_steps": WINDOW,
                      "save_steps": 10_000, "eval_steps": 10_000},
        }
    )  # fmt: skip
    train(cfg, progress=False)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return max(r["steps_per_s"] for r in log if "steps_per_s" in r and r["step"] > WINDOW)


def main() -> None:
    setup()
    from whisperft.models.registry import resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    path = resolve_model("bundled:base")
    store = DATA / "store-train-bench"
    if not (store / "store.json").is_file():
        prepare(PrepareRequest(str(cv_corpus()), "sv", path, store, num_proc=2))
    rates_ours = [ours(str(store), path) for _ in range(3)]
    rates_bare = [bare_loop(str(store), path) for _ in range(3)]
    emit(
        "train_loop_overhead",
        ours_steps_per_s=round(max(rates_ours), 3),
        bare_steps_per_s=round(max(rates_bare), 3),
        ratio=round(max(rates_ours) / max(rates_bare), 3),
        target=">= 0.9x",
        model="bundled:base",
        batch=BATCH,
        audio_context_s=CONTEXT_S,
    )


if __name__ == "__main__":
    main()
