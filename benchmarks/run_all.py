"""make bench: run every benchmark in its own process, keep each result as benchmarks/results/CLAIM.json, and
regenerate BENCHMARKS.md from those files (benchmarks/summary.py).

    python -m benchmarks.run_all                  # every script in SCRIPTS
    python -m benchmarks.run_all bench_export     # only these; the other results stay as they are
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import summary

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [
    "bench_store",
    "bench_prepare",
    "bench_generate",
    "bench_train",
    "bench_pack",
    "bench_longform",
    "bench_fw",
    "bench_beams",
    "bench_ct2_eval",
    "bench_augment",
    "bench_levers",
    "bench_runaway",
    "bench_real_speech",
    "bench_pseudo_label",
    "bench_new_language",
    "bench_audiobook",
    "bench_export",
    "bench_detection",
]


def machine() -> str:
    """This machine, as the results state it (the benchmarks run torch on 2 threads: common.setup)."""
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except ImportError:
        gpu = "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} cores, torch threads 2, {gpu}"


def main() -> None:
    where = machine()
    for name in sys.argv[1:] or SCRIPTS:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, capture_output=True, text=True)
        lines = [json.loads(x[6:]) for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-2000:], file=sys.stderr)
            sys.exit(f"benchmark {name} failed")
        for r in lines:
            print(json.dumps(r), flush=True)
            save(r, where)
    summary.write()


def save(result: dict, where: str) -> Path:
    """``benchmarks/results/CLAIM.json``: the result line with its date and machine, replacing the last one."""
    result = {**result, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": where}
    path = summary.RESULTS / f"{result['claim']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    main()
