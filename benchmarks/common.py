"""Shared benchmark plumbing: offline data made with espeak-ng, timing, memory, and result lines."""

from __future__ import annotations

import csv
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from devkit.synth import long_recording

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "runs" / "bench"
SV = [s.strip() for s in (ROOT / "demo" / "sentences_sv.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
EN = [s.strip() for s in (ROOT / "demo" / "sentences_en.txt").read_text(encoding="utf-8").splitlines() if s.strip()]


PEAK = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
    "sys.exit(r.returncode)\n"
)


def cli(*args: str, peak: bool = False) -> tuple[float, float]:
    """Run ``whisperft ARGS``; (seconds, peak resident MB of the command when ``peak``)."""
    cmd = [str(Path(sys.executable).with_name("whisperft")), *args]
    if peak:
        cmd = [sys.executable, "-c", PEAK, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"whisperft {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    kb = next((int(x.split()[1]) for x in proc.stdout.splitlines() if x.startswith("PEAK_KB")), 0)
    return seconds, kb / 1024


def prepared(source: Path, lang: str, store: Path, audio: bool = False) -> Path:
    """``source`` prepared for bundled base by ``whisperft prepare`` into ``store`` (with its audio as Opus
    when ``audio``); reused when complete."""
    if not (store / "_COMPLETE").is_file():
        extra = ["--audio", "opus"] if audio else []
        cli("prepare", "--lang", lang, "--source", str(source), "--model", "bundled:base", "--out", str(store), *extra)
    return store


def setup() -> None:
    """Same conditions for every measurement: two threads, offline."""
    torch.set_num_threads(2)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def best_of(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Minimum wall time over ``repeats`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def emit(claim: str, **fields: Any) -> None:
    """One machine-readable result line; run_all.py keeps it as benchmarks/results/CLAIM.json, and
    benchmarks/summary.py gives it a short row in BENCHMARKS.md (add an entry to its SUMMARIES for a new claim)."""
    fields.setdefault("peak_rss_mb", peak_rss_mb())
    print("BENCH " + json.dumps({"claim": claim, **fields}), flush=True)


def _clip(job: tuple[str, Path, int, str]) -> float:
    from devkit.synth import render_clip

    text, out, seed, lang = job
    if not out.exists():
        render_clip(text, out, random.Random(seed), lang=lang)
    info = subprocess.run(["soxi", "-D", str(out)], capture_output=True, text=True, check=True)
    return float(info.stdout)


def test_table(folder: Path, rows: list[tuple[str, str]]) -> None:
    """``folder/test.tsv``: a Common Voice style test split of (clip under ``clips/``, sentence) rows,
    written literally as Common Voice's are (no quoting)."""
    lines = ["path\tsentence", *(f"{clip}\t{text}" for clip, text in rows)]
    (folder / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def converted_test(source: Path, out: Path, command: Callable[[Path, Path], list[str]]) -> Path:
    """``source``'s test split (a Common Voice folder) with every clip passed through ``command(clip,
    converted)``, a sox or ffmpeg command line, into ``out`` as WAV; reused when done."""
    if (out / "test.tsv").is_file():
        return out
    (out / "clips").mkdir(parents=True, exist_ok=True)
    lines = (source / "test.tsv").read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        fields = dict(zip(head, line.split("\t"), strict=False))
        name = Path(fields["path"]).with_suffix(".wav").name
        subprocess.run(command(source / "clips" / fields["path"], out / "clips" / name), check=True)
        rows.append((name, fields["sentence"]))
    test_table(out, rows)
    return out


def cv_corpus(name: str = "cv-sv", n: int = 240, lang: str = "sv") -> Path:
    """A Common Voice style folder of ``n`` mp3 clips of about 2-8 s (1-3 sentences each)."""
    root = DATA / name
    if (root / "train.tsv").is_file():
        return root
    texts = SV if lang == "sv" else EN
    rng = random.Random(7)
    jobs = []
    for i in range(n):
        k = rng.choice([1, 1, 2, 2, 3]) if lang == "sv" else rng.choice([1, 1, 2])
        jobs.append((" ".join(rng.sample(texts, k)), root / "clips" / f"{name}_{i:05d}.mp3", i, lang))
    (root / "clips").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(2) as pool:
        durations = list(pool.map(_clip, jobs))
    with open(root / "train.tsv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["client_id", "path", "sentence", "duration"])
        for (text, path, _, _), dur in zip(jobs, durations, strict=True):
            w.writerow(["bench", path.name, text, f"{dur:.2f}"])
    return root


def long_english(minutes: float = 10.0) -> tuple[Path, str]:
    """One long English recording (espeak-ng, 16 kHz wav) and its reference transcript."""
    out = DATA / f"long-en-{minutes:g}min.wav"
    ref = out.with_suffix(".txt")
    if out.is_file() and ref.is_file():
        return out, ref.read_text()
    DATA.mkdir(parents=True, exist_ok=True)
    text = long_recording(EN, out, minutes * 60)
    ref.write_text(text)
    return out, text
