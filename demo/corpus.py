"""Synthesize the demo's Swedish speech corpus in Common Voice layout (48 kHz mp3 + TSVs), offline.

Each sentence is spoken by espeak-ng with a random voice variant, speed and pitch; some
clips get reverb and/or background noise through sox. Sentences are split into
train/dev/test *by sentence*, so dev and test sentences are never heard in training.
"""

from __future__ import annotations

import csv
import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from whisperft.synth import render_clip

HERE = Path(__file__).parent


def sentences() -> list[str]:
    lines = (HERE / "sentences_sv.txt").read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip()]


def build(root: Path, train_variants: int = 2, n_dev: int = 20, n_test: int = 45, seed: int = 1) -> Path:
    """Write ``root/clips/*.mp3`` and train/dev/test TSVs; reuse them when the corpus is unchanged."""
    texts = sentences()
    key = hashlib.sha256(("\n".join(texts) + f"{train_variants}{n_dev}{n_test}{seed}").encode()).hexdigest()[:12]
    marker = root / f".complete-{key}"
    if marker.exists():
        return root
    rng = random.Random(seed)
    order = texts[:]
    rng.shuffle(order)
    splits = {"test": order[:n_test], "dev": order[n_test : n_test + n_dev], "train": order[n_test + n_dev :]}
    jobs = []
    for split, items in splits.items():
        variants = train_variants if split == "train" else 1
        for i, text in enumerate(items):
            for v in range(variants):
                name = f"demo_sv_{split}_{i:04d}_{v}.mp3"
                jobs.append((split, name, text, random.Random(f"{seed}-{split}-{i}-{v}")))
    (root / "clips").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        infos = list(pool.map(lambda j: render_clip(j[2], root / "clips" / j[1], j[3]), jobs))
    for split in splits:
        with open(root / f"{split}.tsv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t")
            w.writerow(["client_id", "path", "sentence", "voice", "speed", "effect"])
            for (s, name, text, _), info in zip(jobs, infos, strict=True):
                if s == split:
                    w.writerow([info["voice"], name, text, info["voice"], info["speed"], info["effect"]])
    marker.write_text("ok\n")
    return root
