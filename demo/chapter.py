"""A chapter read aloud, with the differences a real book has: for long-recording alignment (issue #21).

espeak-ng reads ``chapter_LANG.txt`` as one reader: the reader's introduction, the chapter's paragraphs
with pauses of 0.3-0.9 s between sentences and 1.2-2.0 s between paragraphs, one paragraph left
unread, a paragraph of the reader's own that is not in the text, and optionally music. The text file
beside the recording has the chapter's heading (never read) and all its paragraphs, as a book has.
``truth.json`` holds where every spoken sentence really is, for scoring the aligner.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from devkit.synth import render_recording
from whisperft.data.longform import split_units

HERE = Path(__file__).parent


def sections(lang: str = "sv") -> dict[str, list[str]]:
    """The file's sections: heading, introduction, extra (one line each) and chapter (its paragraphs)."""
    out: dict[str, list[str]] = {}
    name = None
    for line in (HERE / f"chapter_{lang}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            out[name] = []
        elif name is not None:
            out[name].append(line.strip())
    return out


def build(root: Path, lang: str = "sv", paragraphs: int | None = None, unread: int = 2, extra_after: int = 0,
          music_after: int | None = None, speed: int = 160, seed: int = 21) -> dict:  # fmt: skip
    """Write ``root/book/chapter01.mp3`` and ``chapter01.txt`` and ``root/truth.json``; reuse them when made
    with the same settings. ``unread``, ``extra_after`` and ``music_after`` are paragraph indices."""
    parts = sections(lang)
    chapter = parts["chapter"][:paragraphs]
    settings = {"lang": lang, "paragraphs": len(chapter), "unread": unread, "extra_after": extra_after,
                "music_after": music_after, "speed": speed, "seed": seed}  # fmt: skip
    truth_path = root / "truth.json"
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        if truth["settings"] == settings and (root / "book" / "chapter01.mp3").is_file():
            return truth
    rng = random.Random(seed)
    items: list[tuple[str, str | float, float]] = [("say", parts["introduction"][0], 2.0)]
    kinds = ["introduction"]

    def paragraph(text: str, kind: str) -> None:
        for unit in split_units(text):
            items.append(("say", unit.text, rng.uniform(0.3, 0.9)))
            kinds.append(kind)
        items[-1] = (*items[-1][:2], rng.uniform(1.2, 2.0))

    for p, text in enumerate(chapter):
        if p != unread:
            paragraph(text, "text")
        if p == extra_after:
            paragraph(parts["extra"][0], "extra")
        if p == music_after:
            items.append(("music", 6.0, 1.5))
            kinds.append("music")
    book = root / "book"
    book.mkdir(parents=True, exist_ok=True)
    said = render_recording(items, book / "chapter01.mp3", voice=lang, speed=speed)
    (book / "chapter01.txt").write_text("\n\n".join([parts["heading"][0], *chapter]) + "\n", encoding="utf-8")
    items_out = [{**s, "part": k} for s, k in zip(said, kinds, strict=True)]
    truth = {"settings": settings, "unread": chapter[unread] if unread < len(chapter) else None,
             "heading": parts["heading"][0], "items": items_out}  # fmt: skip
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return truth


def build_real(root: Path, lang: str = "es", n: int = 48, seed: int = 21) -> dict:
    """The same differences with a real voice: Debian's Asterisk prompts (``real_speech.py``, one speaker,
    8 kHz) of four words or more, read in a row with pauses of 0.3-0.9 s; the text has one prompt per line,
    a heading, and five prompts that were not read; two prompts open the recording (its introduction) and
    three in its middle are not in the text. Writes ``root/book`` and ``root/truth.json`` like ``build``."""
    import csv

    import real_speech

    truth_path = root / "truth.json"
    if truth_path.is_file() and (root / "book" / "chapter01.mp3").is_file():
        return json.loads(truth_path.read_text(encoding="utf-8"))
    corpus = root / "asterisk"
    real_speech.build(lang, corpus)
    rows: dict[str, Path] = {}
    for split in ("test", "dev"):
        with open(corpus / f"{split}.tsv", encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                if len(r["sentence"].split()) >= 4:
                    rows.setdefault(r["sentence"], corpus / "clips" / r["path"])
    rng = random.Random(seed)
    chosen = rng.sample(sorted(rows), n)
    intro, extra, unread, text = chosen[:2], chosen[2:5], chosen[5:10], chosen[10:]
    middle = len(text) // 2
    spoken = [(t, "introduction") for t in intro] + [(t, "text") for t in text[:middle]]
    spoken += [(t, "extra") for t in extra] + [(t, "text") for t in text[middle:]]
    items = [("file", str(rows[t]), rng.uniform(0.3, 0.9)) for t, _ in spoken]
    book = root / "book"
    book.mkdir(parents=True, exist_ok=True)
    said = render_recording(items, book / "chapter01.mp3")
    heading = "Capitulo uno"
    lines = [heading, *text[:middle], *unread, *text[middle:]]  # the unread prompts sit between read ones
    (book / "chapter01.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")  # a paragraph each
    items_out = [{**s, "kind": "say", "text": t, "part": k} for s, (t, k) in zip(said, spoken, strict=True)]
    truth = {"settings": {"lang": lang, "n": n, "seed": seed}, "unread": "\n\n".join(unread), "heading": heading,
             "items": items_out}  # fmt: skip
    truth_path.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return truth


def score(truth: dict, clips: list[dict]) -> dict:
    """The aligner's clips (alignment.json's, with start, end, speech_start, speech_end and text) against
    where each sentence really is:

    - ``recovered``: the share of the speech that matches the text (sentences read and in the text) that
      lies in clips; ``recovered_s`` and ``matching_s`` in seconds;
    - ``label_cer``: per clip, the CER (normalized text) between its label and what was really said in
      its span (a sentence cut at the span's edge counts with the share of its characters inside it);
    - ``boundary_ms``: per clip edge, how far the speech edge the aligner found is from the real one;
    - ``leaks``: per difference (introduction, extra, music, heading, unread), clips holding any of it.
    """
    from rapidfuzz.distance import Levenshtein

    from whisperft.text import normalize_text

    items = truth["items"]
    matching = [t for t in items if t["part"] == "text"]
    cers, errors, covered = [], [], 0.0
    leaks = dict.fromkeys(("introduction", "extra", "music", "heading", "unread"), 0)
    unread = {normalize_text(u.text) for u in split_units(truth["unread"] or "")}
    for c in clips:
        said, inside = [], []
        for t in items:
            overlap = min(c["end"], t["end"]) - max(c["start"], t["start"])
            if overlap <= 0:
                continue
            share = overlap / max(1e-6, t["end"] - t["start"])
            if t["part"] in leaks and overlap > 0.05:
                leaks[t["part"]] += 1
            text = normalize_text(t["text"]) if t["kind"] == "say" else ""
            n = round(len(text) * min(1.0, share))
            said.append(text if share >= 1 else (text[:n] if t["start"] >= c["start"] else text[len(text) - n :]))
            if share >= 1 and t["part"] == "text":
                inside.append(t)
                covered += t["end"] - t["start"]
        label, heard = normalize_text(c["text"]), " ".join(s for s in said if s)
        cers.append(Levenshtein.distance(label, heard) / max(1, len(label)))
        heading = normalize_text(truth["heading"])  # in the label but not said: the text prompts use "menu" twice
        leaks["heading"] += heading in label and heading not in heard
        leaks["unread"] += any(u in label and u not in heard for u in unread)
        if inside:
            errors += [abs(c["speech_start"] - inside[0]["start"]), abs(c["speech_end"] - inside[-1]["end"])]
    matching_s = sum(t["end"] - t["start"] for t in matching)
    errors.sort()
    return {
        "clips": len(clips),
        "recovered": round(covered / matching_s, 3) if matching_s else 0.0,
        "recovered_s": round(covered, 1),
        "matching_s": round(matching_s, 1),
        "label_cer_mean": round(sum(cers) / len(cers), 4) if cers else None,
        "label_cer_max": round(max(cers), 4) if cers else None,
        "boundary_ms_median": round(1000 * errors[len(errors) // 2]) if errors else None,
        "boundary_ms_max": round(1000 * errors[-1]) if errors else None,
        "leaks": leaks,
    }
