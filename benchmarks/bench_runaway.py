"""Claim: bounding decoding by the audio's duration (``text.token_limit``) and stopping a decode that repeats
itself (``text.runaway_stop``) makes ``eval`` of a model that does not know the language several times faster,
and no worse (issue #18, item 8).

Bundled base (multilingual, never fine-tuned on Swedish) on the demo's Swedish test clips of 2-6 s
(demo/corpus.py's test split, rendered alike), greedy, batch 16, two threads. Reference: the same
``run_eval`` with ``bound=False``, decoding as before the issue (to the decoder's 444 tokens, no
repetition stop). One run each: a looping decode takes minutes. ``BENCH_RUNAWAY_CLIPS`` evaluates only the
first N clips.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import DATA, SV, emit, setup
from devkit.synth import render_clip

MIN_S, MAX_S = 2.0, 6.0  # the clip durations


def swedish_clips() -> Path:
    """The demo's test split as ``demo/corpus.py`` renders it (the same sentences, voices, speeds and effects:
    its shuffle and per-clip seeds), in a Common Voice style folder (train.tsv) of the clips of 2-6 s."""
    root = DATA / "cv-sv-demo-test"
    if (root / "train.tsv").is_file():
        return root
    (root / "clips").mkdir(parents=True, exist_ok=True)
    order = SV[:]
    random.Random(1).shuffle(order)  # corpus.build(seed=1): test = the first 45 of this order
    jobs = [(text, root / "clips" / f"demo_sv_test_{i:04d}_0.mp3", random.Random(f"1-test-{i}-0"))
            for i, text in enumerate(order[:45])]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda j: render_clip(j[0], j[1], j[2]), jobs))
    rows = []
    for text, path, _ in jobs:
        info = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
        if MIN_S <= float(info.stdout) <= MAX_S:
            rows.append(["bench", path.name, text, f"{float(info.stdout):.2f}"])
    with open(root / "train.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["client_id", "path", "sentence", "duration"])
        w.writerows(rows)
    return root


def main() -> None:
    setup()
    from whisperft.data.store import FeatureStore
    from whisperft.evaluate.request import EvalRequest
    from whisperft.evaluate.run import run_eval
    from whisperft.prepare.request import PrepareRequest
    from whisperft.prepare.run import prepare

    n = int(os.environ.get("BENCH_RUNAWAY_CLIPS", "45"))
    store = DATA / "store-sv-demo-test"
    if not FeatureStore.is_store(str(store)):
        prepare(PrepareRequest(str(swedish_clips()), "sv", "bundled:base", store, num_proc=2))

    def evaluate(bound: bool) -> Any:
        request = EvalRequest("bundled:base", str(store), "train", "sv", max_samples=n, out=None, bound=bound)
        return run_eval(request)

    before = evaluate(bound=False)
    after = evaluate(bound=True)

    def pct(r: Any, key: str) -> float | None:
        value = getattr(r, key)
        return None if value is None else round(100 * value, 1)

    emit(
        "runaway_decoding",
        ours_seconds=after.seconds,
        reference_seconds=before.seconds,
        ratio=round(before.seconds / after.seconds, 2),
        target="faster, WER no worse; a fine-tuned model's WER unchanged (tests)",
        wer_pct_bounded=pct(after, "wer"),
        wer_pct_unbounded=pct(before, "wer"),
        wer_normalized_pct_bounded=pct(after, "wer_normalized"),
        wer_normalized_pct_unbounded=pct(before, "wer_normalized"),
        token_limit_hits_bounded=after.extra["token_limit_hits"],
        repetition_stops_bounded=after.extra["repetition_stops"],
        decoder_limit_hits_unbounded=before.extra["token_limit_hits"],
        utterances=after.num_utterances,
        audio_seconds=after.audio_seconds,
        model="bundled:base (not fine-tuned), Swedish espeak-ng clips of 2-6 s, greedy, batch 16",
    )


if __name__ == "__main__":
    main()
