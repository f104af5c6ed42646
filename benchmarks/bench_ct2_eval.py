"""Claim: ``eval`` on the exported CTranslate2 int8 model runs >= 3x the utterances/s of PyTorch
per-utterance evaluation, with WER within 1 point of the float model.

Same 48 English espeak-ng clips (the bench_generate store), bundled base, greedy, two threads.
Measured: PyTorch float32 one utterance at a time, PyTorch batched (eval's default, 16), and
CTranslate2 int8 batched (16), which is what ``eval --model CT2_FOLDER`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmarks.common import DATA, best_of, cv_corpus, emit, setup


def main() -> None:
    setup()
    from whisperft.data.store import FeatureStore
    from whisperft.export.ct2 import export_ct2
    from whisperft.export.parity import parity_clips
    from whisperft.features import N_FRAMES, pad_features
    from whisperft.metrics import score
    from whisperft.models.ct2_decode import CT2Decoder
    from whisperft.models.decode import decode_rows, generate_texts
    from whisperft.models.registry import load_model, load_processor, resolve_model
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare
    from whisperft.text import Decoded

    store = DATA / "store-en-eval"
    if not FeatureStore.is_store(str(store)):
        prepare(PrepareRequest(str(cv_corpus("cv-en", n=48, lang="en")), "en", "bundled:base", store, num_proc=2))
    split = FeatureStore(store).split("train")
    path = resolve_model("bundled:base")
    ct2_dir = DATA / "base-ct2-int8"
    if not (ct2_dir / "model.bin").is_file():
        export_ct2(path, ct2_dir, "int8", verify_audio=parity_clips("en"), language="en")
    model, tok = load_model(path).eval(), load_processor(path).tokenizer
    ct2 = CT2Decoder(ct2_dir)
    idx = list(range(len(split)))

    def per_utterance() -> list[str]:
        return [
            generate_texts(model, tok, pad_features([(split.frames(i), float(split.pad_value[i]))]), "en")[0]
            for i in idx
        ]

    def batched(generate: Callable[[torch.Tensor], list[str]]) -> list[str]:
        def rows(feats: torch.Tensor, limits: list, repeats: bool) -> list[Decoded]:
            return [Decoded(t) for t in generate(feats)]

        hyps = decode_rows(split, rows, batch_size=16, indices=idx, n_frames=N_FRAMES, bound=False)
        return [hyps[i].text for i in idx]

    t_one, one = best_of(per_utterance)
    t_pt, pt = best_of(lambda: batched(lambda f: generate_texts(model, tok, f, "en")))
    t_ct2, ct = best_of(lambda: batched(lambda f: ct2.generate_texts(f.numpy(), "en")))
    ids, refs = [str(i) for i in idx], [split.texts[i] for i in idx]

    def wer(hyps: list[str]) -> float:
        return round(score(ids, refs, hyps, "en")[0]["wer_normalized"], 4)

    emit(
        "ct2_eval",
        ours_utt_per_s=round(len(idx) / t_ct2, 2),
        reference_utt_per_s=round(len(idx) / t_one, 2),
        pytorch_batched_utt_per_s=round(len(idx) / t_pt, 2),
        ratio=round(t_one / t_ct2, 2),
        ratio_vs_pytorch_batched=round(t_pt / t_ct2, 2),
        target=">= 3x PyTorch per-utterance, WER within 1 point of float",
        wer_normalized_ct2_int8=wer(ct),
        wer_normalized_pytorch_float32=wer(pt),
        wer_normalized_pytorch_per_utterance=wer(one),
        utterances=len(idx),
        model="bundled:base; export --quantization int8",
    )


if __name__ == "__main__":
    main()
