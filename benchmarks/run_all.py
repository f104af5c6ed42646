"""make bench: run every benchmark in its own process and write BENCHMARKS.md."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

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
    "bench_new_language",
    "bench_audiobook",
    "bench_export",
    "bench_detection",
]


def main() -> None:
    results = []
    for name in sys.argv[1:] or SCRIPTS:
        print(f"== {name}", flush=True)
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, capture_output=True, text=True)
        lines = [json.loads(x[6:]) for x in proc.stdout.splitlines() if x.startswith("BENCH ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-2000:], file=sys.stderr)
            sys.exit(f"benchmark {name} failed")
        for r in lines:
            print(json.dumps(r), flush=True)
        results.extend(lines)
    write(results)


def _is_reference(key: str) -> bool:
    """The reference's headline figure: ``reference_*``, or a rate that is not ours."""
    return key.startswith("reference_") or (
        not key.startswith("ours_") and key.endswith(("per_s", "per_hour", "realtime"))
    )


def write(results: list[dict]) -> None:
    path = ROOT / "BENCHMARKS.md"
    old = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("<!-- "):
                r = json.loads(line[5:-4])
                old[r["claim"]] = r
    for r in results:
        r["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        old[r["claim"]] = r
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} cores, torch threads 2, no GPU"
    out = [
        "# Benchmarks",
        "",
        f"Machine: {machine}. Timings are the best of 3 runs (augment_cost, levers_demo, runaway_decoding, "
        "export_* and real_speech_*: one run each), measured by `make bench`",
        "(one script per claim in `benchmarks/`, whisperft and its reference measured in the same run).",
        "",
        "| claim | whisperft | reference | ratio | target | details | date |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in old.values():
        keys = [k for k in r if k not in ("claim", "ratio", "target", "date")]
        ours = next((f"{k.removeprefix('ours_')}: {r[k]}" for k in keys if k.startswith("ours_")), "")
        ref = next((f"{k}: {r[k]}" for k in keys if _is_reference(k)), "")
        details = ", ".join(f"{k}: {r[k]}" for k in keys if f"{k}: {r[k]}" != ref and not k.startswith("ours_"))
        ratio = f"{r['ratio']}x" if isinstance(r.get("ratio"), (int, float)) else "-"
        out.append(f"| {r['claim']} | {ours} | {ref} | {ratio} | {r.get('target', '-')} | {details} | {r['date']} |")
    out += ["", "Raw results:", ""] + [f"<!-- {json.dumps(r)} -->" for r in old.values()]
    path.write_text("\n".join(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
