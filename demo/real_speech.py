"""Build a real-speech corpus from Debian's Asterisk voice prompts, in Common Voice layout, offline.

    python demo/real_speech.py --lang es --out runs/real/es     # or --lang fr

Debian's ``asterisk-core-sounds-LANG-wav`` holds the Asterisk PBX prompts read by professional voice
talent (Spanish: Allison, es_MX; French: June, fr_CA), 8 kHz 16-bit mono WAV: telephone band.
``asterisk-core-sounds-LANG`` holds their script, ``core-sounds-LANG.txt.gz``, as ``name: text`` lines.
Licence: CC-BY-SA 3.0 (Digium, Inc.). Both are installed with apt-get when missing.

The scripts are as real data is: Spanish is written without accents, French has typos, some lines
are notes ("[beep]", "(ahooga)"), some are empty, and some texts do not match their audio. The
builder skips, with a reason for each clip:

- ``no_audio``: the script names a clip that the package does not install;
- ``empty_text``: the script gives no text for the clip;
- ``note``: the text holds a transcriber's note (``whisperft.text.transcript_note``, which prepare
  applies too), or ends in a parenthesised word, fr "Pour (emphase)" (this script's habit; in other
  text a parenthesis is often read, so prepare keeps it);
- ``conflicting_text``: the script names the clip twice with different texts (es "digits/0" is both
  "cero" and "diez"): which one was read is unknown, so neither is kept;
- ``too_long``: longer than Whisper's 30 s window (the longest menus);
- ``text_too_long``: more letters per second than ``MAX_RATE_OVER_MEDIAN`` times this speaker's
  median rate: the text belongs to a longer recording than the one installed.

What is kept is split by prompt text (a text read in two prompts lands in one split only): test and
dev take mostly prompts of three or more words, train the rest. Clips are copied as they are (8 kHz
WAV) to ``clips/``; ``unfiltered/`` lists every scripted clip, so that prepare's own filters can be
compared with the builder's (``compare``). ``builder_report.json`` says what was skipped and why.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from whisperft.text import normalize_text, speech_chars, transcript_note

LANGS = ("es", "fr")
SOUNDS = Path("/usr/share/asterisk/sounds")  # SOUNDS/LANG links to the installed voice (Debian alternatives)
SCRIPT = "/usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz"
# A prompt text with more letters per second than 1.75x the speaker's median is far too long for its
# audio; fitted to these two voices. Allison (es) reads at a median 8.0/s, June (fr) at 10.4/s. Beyond
# the bound: es vm-invalid-password (14.1/s against 13.9/s: its "Por favor intente de nuevo" is not in
# the audio), es vm-mismatch (19.0/s, the audio stops after the first sentence), fr vm-mismatch (24.9/s)
# and vm-record-prepend (20.5/s). The fastest whole reads kept: 12.8/s (es), 18.2/s (fr).
MAX_RATE_OVER_MEDIAN = 1.75
MAX_SECONDS = 30.0  # Whisper's window: a longer clip cannot be one training example
MIN_TEST_CLIPS = 90
DEV_CLIPS = 30
LONG_PROMPT_WORDS = 3  # test and dev are weighted toward prompts of at least this many words
LONG_SHARE = 0.8  # ... which make up this share of them


@dataclass
class Prompt:
    name: str  # the script's name, "digits/1" or "vm-intro"
    text: str
    wav: Path
    seconds: float = 0.0
    reason: str | None = None  # why the builder skips it
    detail: str = ""

    @property
    def clip(self) -> str:
        return self.name.replace("/", "_") + ".wav"


def ensure_packages(packages: list[str]) -> None:
    """Install Debian ``packages`` that are missing, with apt-get (as root); RuntimeError saying how when
    that cannot be done here."""
    if shutil.which("dpkg") is None:
        raise RuntimeError(f"needs the Debian packages {' '.join(packages)} (or their files), and dpkg is missing")
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-qq", *missing]
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(f"missing Debian packages {' '.join(missing)}: run `sudo {' '.join(command)}`")
    print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(command, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run(command, check=True, capture_output=True, env=env)


def read_script(lang: str) -> list[Prompt]:
    """The prompt script's ``name: text`` lines (``;`` starts a comment), with their clips' paths."""
    voice = SOUNDS / lang
    prompts = []
    with gzip.open(SCRIPT.format(lang=lang), "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith(";") or ":" not in line:
                continue
            name, _, text = line.partition(":")
            prompts.append(Prompt(name.strip(), " ".join(text.split()), voice / f"{name.strip()}.wav"))
    return prompts


def _end_note(text: str) -> str | None:
    """A parenthesised word that ends the text, "(emphase)": a reading direction in these scripts."""
    found = re.search(r"\(\s*[^\s()]+\s*\)\s*$", text)
    return found.group(0).strip() if found else None


def screen(prompts: list[Prompt]) -> None:
    """Set each prompt's ``seconds``, and ``reason`` when the builder skips it."""
    texts: dict[str, set[str]] = {}
    for p in prompts:
        texts.setdefault(p.name, set()).add(p.text)
    for p in prompts:
        if not p.wav.is_file():
            p.reason, p.detail = "no_audio", f"{p.wav} is not installed"
            continue
        p.seconds = sf.info(p.wav).duration
        note = transcript_note(p.text) or _end_note(p.text)
        if not p.text:
            p.reason, p.detail = "empty_text", "the script gives no text"
        elif note is not None:
            p.reason, p.detail = "note", f"the text holds the note {note!r}"
        elif len(texts[p.name]) > 1:
            p.reason, p.detail = "conflicting_text", f"the script reads it as {' / '.join(sorted(texts[p.name]))}"
        elif p.seconds > MAX_SECONDS:
            p.reason, p.detail = "too_long", f"{p.seconds:.1f} s > {MAX_SECONDS:g} s"
    rates = [speech_chars(p.text) / p.seconds for p in prompts if p.reason is None and p.seconds > 0]
    limit = MAX_RATE_OVER_MEDIAN * statistics.median(rates)
    for p in prompts:
        rate = speech_chars(p.text) / p.seconds if p.seconds > 0 else float("inf")
        if p.reason is None and rate > limit:
            p.reason = "text_too_long"
            p.detail = f"{rate:.1f} letters/s in {p.seconds:.2f} s > {limit:.1f}/s ({MAX_RATE_OVER_MEDIAN}x the median)"


def split_by_text(prompts: list[Prompt], seed: int = 19) -> dict[str, list[Prompt]]:
    """train/dev/test, no text in two splits; test and dev hold ``LONG_SHARE`` long prompts."""
    groups: dict[str, list[Prompt]] = {}
    for p in prompts:
        groups.setdefault(normalize_text(p.text), []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    long = [k for k in keys if len(k.split()) >= LONG_PROMPT_WORDS]
    short = [k for k in keys if len(k.split()) < LONG_PROMPT_WORDS]
    splits: dict[str, list[Prompt]] = {"test": [], "dev": [], "train": []}
    for split, size in (("test", MIN_TEST_CLIPS), ("dev", DEV_CLIPS)):
        for pool, want in ((long, round(size * LONG_SHARE)), (short, size - round(size * LONG_SHARE))):
            taken = 0
            while pool and taken < want:
                group = groups[pool.pop()]
                splits[split] += group
                taken += len(group)
    splits["train"] = [p for k in long + short for p in groups[k]]
    return splits


def write_tsv(path: Path, prompts: list[Prompt], lang: str) -> None:
    """A Common Voice TSV, written literally as Common Voice's are: no quoting, no escapes (texts hold no
    tab or line break: ``read_script`` joins their words with single spaces)."""
    lines = ["client_id\tpath\tsentence\tlocale\tsegment"]
    lines += [f"asterisk-{lang}\t{p.clip}\t{p.text}\t{lang}\t{p.name}" for p in prompts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(lang: str, out: Path, seed: int = 19) -> dict:
    """Write the corpus under ``out`` (reused when complete) and return the builder's report."""
    if lang not in LANGS:
        raise SystemExit(f"--lang {lang}: the Asterisk prompts are built for {', '.join(LANGS)}")
    report_path = out / "builder_report.json"
    if report_path.is_file():
        return json.loads(report_path.read_text())
    ensure_packages([f"asterisk-core-sounds-{lang}", f"asterisk-core-sounds-{lang}-wav"])
    prompts = read_script(lang)
    screen(prompts)
    kept = [p for p in prompts if p.reason is None]
    splits = split_by_text(kept, seed)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for p in prompts:
        if p.wav.is_file():
            shutil.copyfile(p.wav, out / "clips" / p.clip)
    for split, items in splits.items():
        write_tsv(out / f"{split}.tsv", items, lang)
    unfiltered = out / "unfiltered"
    unfiltered.mkdir(exist_ok=True)
    if not (unfiltered / "clips").exists():
        (unfiltered / "clips").symlink_to("../clips")
    write_tsv(unfiltered / "train.tsv", prompts, lang)
    skipped: dict[str, list[dict[str, str]]] = {}
    for p in prompts:
        if p.reason is not None:
            skipped.setdefault(p.reason, []).append({"clip": p.name, "text": p.text, "detail": p.detail})
    report = {
        "lang": lang,
        "voice": (SOUNDS / lang).resolve().name,
        "script_lines": len(prompts),
        "kept": len(kept),
        "minutes": round(sum(p.seconds for p in kept) / 60, 1),
        "splits": {
            s: {"clips": len(v), "minutes": round(sum(p.seconds for p in v) / 60, 1)} for s, v in splits.items()
        },
        "skipped": {k: len(v) for k, v in sorted(skipped.items())},
        "skipped_clips": skipped,
    }
    report_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return report


# Which of prepare's skip reasons stands for each of the builder's (no_audio: prepare's missing_file).
PREPARE_REASON = {"no_audio": "missing_file", "empty_text": "empty_text", "note": "annotated_text",
                  "conflicting_text": "duplicate", "too_long": "too_long",
                  "text_too_long": "implausible_rate"}  # fmt: skip


def compare(builder: dict, prepare_report: dict) -> dict[str, dict[str, int]]:
    """Builder against prepare on ``unfiltered/``: per builder reason, its count and prepare's count of
    the matching reason; plus prepare's reasons that the builder has no counterpart for."""
    skipped: dict[str, int] = {}
    for rep in prepare_report.values():  # per split; a derived validation split holds some of train's rows
        for reason, n in rep["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + n
    out = {reason: {"builder": n, "prepare": skipped.get(PREPARE_REASON[reason], 0)}
           for reason, n in builder["skipped"].items()}  # fmt: skip
    for reason, n in skipped.items():
        if reason not in PREPARE_REASON.values():
            out[f"prepare:{reason}"] = {"builder": 0, "prepare": n}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=LANGS, required=True)
    parser.add_argument("--out", type=Path, help="default: runs/real/LANG")
    args = parser.parse_args()
    out = args.out or Path("runs") / "real" / args.lang
    try:
        report = build(args.lang, out)
    except RuntimeError as exc:
        sys.exit(f"error: {exc}")
    summary = {k: v for k, v in report.items() if k != "skipped_clips"}
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    print(f"wrote {out}; prepare it with: whisperft prepare --lang {args.lang} --source {out} --out ...")


if __name__ == "__main__":
    main()
