"""Pseudo-labelling on real voices: how much recordings without text add, and which filter to trust.

Debian's Asterisk prompts (demo/real_speech.py screens them: one professional voice, 8 kHz telephone
audio) are split by prompt text into three parts, by clip count: L, transcribed (a quarter); U,
untranscribed (half: its text is withheld from training and used only to score the labels); T, test
(a quarter, never trained on). Eight runs, each from bundled base with configs/real-es.yaml and the
same number of steps (``train.max_steps``, 40 packed batches of 4 windows):

- a: L only;
- b: L plus U labelled by ``whisperft label`` with the model from (a) as the teacher, filtered at the
  default threshold (``label.request.MIN_AVG_LOGPROB``);
- b_loose: the same labels at openai-whisper's log-probability floor, -1.0 (``LOOSE_LOGPROB``);
- b_strict: the same labels kept only at a mean token log-probability of -0.2 or more (``STRICT_LOGPROB``:
  does a filter that keeps only labels near 10% WER close the gap to the oracle?);
- c: the same labels, unfiltered (every clip with text, rejected ones too);
- d: L plus U labelled by bundled base, filtered at the default;
- e: the oracle, L plus U with its true text;
- chapter: U read in a row as one long recording with no text (like demo/chapter.py's chapters),
  labelled by (a): ``label`` cuts it at pauses, and the kept clips are mixed with L like (b).

``label`` runs once per teacher, at ``LOOSE_LOGPROB``; each stricter filter keeps the rows of that
manifest whose mean token log-probability reaches it, which are exactly the rows ``label`` keeps at that
floor (its rules for a kept label are a conjunction, ``label.run.judge``).
L and U are mixed with ``data.mix`` at weights in proportion to their hours. Each final model is scored
on T (normalized WER and CER, ``whisperft eval``). For the labels themselves: their WER against the
withheld text, kept and rejected; the share of U kept; and, per confidence signal, how well it tells
good labels (normalized WER <= 10%) from bad ones: the ROC AUC and the precision when keeping the same
share as the default filter. Signals: the decoder's mean token log-probability, its minimum (scored
by teacher forcing the label through the same weights in transformers), the no-speech probability,
the compression ratio, the speaking rate's distance from the median, and the agreement of the beam
label with a greedy decode (1 - their WER), whose cost is the greedy label's time.

Throughput: ``label`` on the CTranslate2 path against faster-whisper's ``BatchedInferencePipeline``
transcribing the same files one by one (its batches are within one file), same model folder, beam 5,
batch size 8 (both defaults),
no timestamps; audio-seconds per second, model load included on both sides.

Targets: (b) closes at least half of the gap between (a) and (e); (b) beats (c); kept labels' WER at
most half of the rejected ones'; label at least as fast as the BatchedInferencePipeline.
Part of make bench (slow: eight trainings of about 10 minutes per language on 2 cores).

    python -m benchmarks.bench_pseudo_label                 # es and fr
    python -m benchmarks.bench_pseudo_label --langs es
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from benchmarks.common import DATA, ROOT, cli, emit, prepared, setup

sys.path.insert(0, str(ROOT / "demo"))
import real_speech

from whisperft.label.request import MIN_AVG_LOGPROB
from whisperft.text import LOG_PROB_FLOOR, normalize_text

CONFIG = ROOT / "configs" / "real-es.yaml"
SHARES = (("T", 0.25), ("L", 0.25), ("U", 0.5))
GOOD_WER = 0.10  # a label with at most this normalized WER against the withheld text is good
RUNS = ("a", "b", "b_loose", "b_strict", "c", "d", "e", "chapter")
LOOSE_LOGPROB = LOG_PROB_FLOOR  # openai-whisper's -1.0: what label runs at here, and run b_loose's filter
STRICT_LOGPROB = -0.2  # run b_strict: (b)'s labels kept only at this mean token log-probability or higher
LOGPROB_SWEEP = (-1.0, -0.8, -0.6, -0.5, -0.4, -0.3, -0.2)


def split_prompts(lang: str, seed: int = 35) -> dict[str, list[real_speech.Prompt]]:
    """The prompts the builder keeps, split by normalized text into T, L and U by clip count."""
    prompts = real_speech.read_script(lang)
    real_speech.screen(prompts)
    groups: dict[str, list[real_speech.Prompt]] = {}
    for p in prompts:
        if p.reason is None:
            groups.setdefault(normalize_text(p.text), []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    total = sum(len(g) for g in groups.values())
    out: dict[str, list[real_speech.Prompt]] = {name: [] for name, _ in SHARES}
    bounds, acc = [], 0.0
    for name, share in SHARES:
        acc += share
        bounds.append((name, acc * total))
    taken = 0
    for k in keys:
        name = next(n for n, b in bounds if taken < b)
        out[name] += groups[k]
        taken += len(groups[k])
    return out


def write_folders(lang: str, root: Path) -> dict[str, list[real_speech.Prompt]]:
    """Under ``root``: ``L/`` (train.tsv: L, test.tsv: T), ``U-true/`` (train.tsv: U with its text, the
    oracle), ``U-audio/`` (U's clips alone, what label reads), all on one ``clips/`` copy."""
    real_speech.ensure_packages([f"asterisk-core-sounds-{lang}", f"asterisk-core-sounds-{lang}-wav"])
    splits = split_prompts(lang)
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for ps in splits.values():
        for p in ps:
            if not (clips / p.clip).is_file():
                (clips / p.clip).write_bytes(p.wav.read_bytes())
    for folder, tables in (("L", {"train": "L", "test": "T"}), ("U-true", {"train": "U"})):
        (root / folder).mkdir(exist_ok=True)
        if not (root / folder / "clips").exists():
            (root / folder / "clips").symlink_to("../clips")
        for table, part in tables.items():
            real_speech.write_tsv(root / folder / f"{table}.tsv", splits[part], lang)
    (root / "U-audio").mkdir(exist_ok=True)
    for p in splits["U"]:
        link = root / "U-audio" / p.clip
        if not link.exists():
            link.symlink_to(f"../clips/{p.clip}")
    return splits


def labelled(teacher: str, root: Path, tag: str, lang: str, beams: int | None = None) -> tuple[Path, float]:
    """``whisperft label`` of U-audio by ``teacher`` into ``root/label-TAG``; (folder, seconds), reused."""
    out = root / f"label-{tag}"
    timing = out / "seconds.json"
    if not timing.is_file():
        extra = ["--num-beams", str(beams)] if beams else []
        extra += ["--min-avg-logprob", str(LOOSE_LOGPROB)]
        seconds, _ = cli("label", str(root / "U-audio"), "--model", teacher, "--lang", lang, "--out", str(out), *extra)
        timing.write_text(json.dumps({"seconds": round(seconds, 2)}))
    return out, json.loads(timing.read_text())["seconds"]


def rows(folder: Path, rejected: bool = True, floor: float = MIN_AVG_LOGPROB) -> list[dict[str, str]]:
    """The label folder's rows as ``label`` keeps them at the log-probability ``floor`` (``kept`` = "1"),
    and, with ``rejected``, the others: its rejected ones, and those of its manifest under ``floor``
    (all counted ``low_confidence``; ``label`` at that floor calls one over the no-speech probability
    ``no_speech``)."""
    out = []
    for name, kept in (("manifest.csv", "1"), ("rejected.csv", "0")):
        with open(folder / name, newline="", encoding="utf-8") as fh:
            out += [{**r, "kept": kept} for r in csv.DictReader(fh)]
    for r in out:
        if r["kept"] == "1" and r["avg_logprob"] and float(r["avg_logprob"]) < floor:
            r["kept"], r["reason"] = "0", "low_confidence"
    return out if rejected else [r for r in out if r["kept"] == "1"]


def unfiltered_manifest(folder: Path) -> Path:
    """Every labelled clip with text, kept or rejected: run (c)'s manifest, beside the label's."""
    every = [r for r in rows(folder) if r["text"].strip() and r["audio"]]
    return _manifest(folder / "unfiltered.csv", every)


def filtered_manifest(folder: Path, floor: float = MIN_AVG_LOGPROB) -> Path:
    """The rows ``label`` keeps at the log-probability ``floor``, as a manifest beside the label's."""
    return _manifest(folder / f"manifest{floor:g}.csv", rows(folder, rejected=False, floor=floor))


def _manifest(path: Path, table: list[dict[str, str]]) -> Path:
    """``table`` as a manifest prepare reads (audio, text, duration) at ``path``, written once."""
    if not path.is_file():
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["audio", "text", "duration"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(table)
    return path


def clip_wer(ref: str, hyp: str) -> float:
    """Normalized WER of one label (a fraction; 1.0 for an empty label)."""
    import jiwer

    r, h = normalize_text(ref), normalize_text(hyp)
    return jiwer.wer(r, h) if h else 1.0


def corpus_wer(pairs: list[tuple[str, str]]) -> float | None:
    """Normalized corpus WER (percent) of (reference, label) pairs: total errors over total words."""
    import jiwer

    pairs = [(normalize_text(r), normalize_text(h)) for r, h in pairs if normalize_text(r)]
    if not pairs:
        return None
    out = jiwer.process_words([r for r, _ in pairs], [h or "<empty>" for _, h in pairs])
    return round(100 * out.wer, 1)


def token_scores(teacher: str, folder: Path, table: list[dict[str, str]], lang: str) -> list[tuple[float, float]]:
    """(mean, min) token log-probability of each row's label under ``teacher``'s weights in transformers,
    teacher-forced: the probability the decoder gives each text token after the standard prompt."""
    import torch

    from whisperft.audio import decode_audio
    from whisperft.models.registry import load_model, load_processor, resolve_model

    path = resolve_model(teacher)
    model, processor = load_model(path).eval(), load_processor(path)
    tok = processor.tokenizer
    tok.set_prefix_tokens(language=lang, task="transcribe", predict_timestamps=False)
    prefix = len(tok.prefix_tokens)
    out = []
    for start in range(0, len(table), 16):
        part = table[start : start + 16]
        audio = [decode_audio(folder / r["audio"]) for r in part]
        feats = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
        ids = [tok(r["text"]).input_ids for r in part]
        width = max(len(i) for i in ids)
        inp = torch.tensor([i + [tok.eos_token_id] * (width - len(i)) for i in ids])
        with torch.inference_mode():
            logits = model(input_features=feats, decoder_input_ids=inp[:, :-1]).logits
        lp = logits.float().log_softmax(-1).gather(-1, inp[:, 1:, None])[..., 0]
        for b, i in enumerate(ids):
            text = lp[b, prefix - 1 : len(i) - 2]  # the text tokens, each predicted from the one before
            out.append((float(text.mean()), float(text.min())) if len(text) else (0.0, 0.0))
    return out


def roc_auc(scores: list[float], good: list[bool]) -> float | None:
    """P(a good label scores above a bad one), ties counted half (the Mann-Whitney U statistic)."""
    pos = [s for s, g in zip(scores, good, strict=True) if g]
    neg = [s for s, g in zip(scores, good, strict=True) if not g]
    if not pos or not neg:
        return None
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return round(float((p > n).mean() + 0.5 * (p == n).mean()), 3)


def precision_at(scores: list[float], good: list[bool], share: float) -> float | None:
    """The share of good labels among the top ``share`` by score."""
    k = max(1, round(share * len(scores)))
    order = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]
    return round(sum(good[i] for i in order) / k, 3) if scores else None


def label_quality(folder: Path, greedy: Path, truth: dict[str, str], teacher: str, lang: str) -> dict:
    """The labels against the withheld text: WER kept and rejected, the share kept, each signal's AUC
    and precision at the default filter's share, and the log-probability threshold swept."""
    table = [r for r in rows(folder) if r["audio"]]
    greedy_text = {r["audio"]: r["text"] for r in rows(greedy)}
    for r in table:
        r["truth"] = truth[Path(r["source"]).name]
        r["wer"] = clip_wer(r["truth"], r["text"])
    scored = [r for r in table if r["text"].strip()]
    for r, (mean, low) in zip(scored, token_scores(teacher, folder, scored, lang), strict=True):
        r["tf_mean"], r["tf_min"] = mean, low
    rates = [float(r["chars_per_second"]) for r in scored]
    median = statistics.median(rates)
    good = [r["wer"] <= GOOD_WER for r in scored]

    def num(r: dict, key: str, default: float) -> float:
        return float(r[key]) if r.get(key) not in (None, "") else default

    signals = {
        "avg_logprob": [num(r, "avg_logprob", -10.0) for r in scored],
        "min_token_logprob": [r["tf_min"] for r in scored],
        "teacher_forced_mean": [r["tf_mean"] for r in scored],  # the check on the one above: ~ avg_logprob
        "no_speech_prob": [-num(r, "no_speech_prob", 1.0) for r in scored],
        "compression_ratio": [-num(r, "compression_ratio", 10.0) for r in scored],
        "rate_vs_median": [-abs(math.log(max(float(r["chars_per_second"]), 0.1) / median)) for r in scored],
        "greedy_agreement": [1 - clip_wer(greedy_text.get(r["audio"], ""), r["text"]) for r in scored],
    }
    kept = [r for r in table if r["kept"] == "1"]
    share = len(kept) / len(table)
    sweep = {}
    for t in LOGPROB_SWEEP:
        keep = [r for r in scored if num(r, "avg_logprob", -10.0) >= t]
        drop = [r for r in table if r not in keep]
        sweep[f"{t:g}"] = {
            "share_kept": round(len(keep) / len(table), 3),
            "kept_wer": corpus_wer([(r["truth"], r["text"]) for r in keep]),
            "rejected_wer": corpus_wer([(r["truth"], r["text"]) for r in drop]),
        }
    return {
        "clips": len(table),
        "share_kept": round(share, 3),
        "hours_kept": round(sum(float(r["duration"]) for r in kept) / 3600, 3),
        "good_share": round(sum(good) / len(scored), 3),
        "all_wer": corpus_wer([(r["truth"], r["text"]) for r in table]),
        **_kept_and_rejected(table),
        "auc": {name: roc_auc(s, good) for name, s in signals.items()},
        "precision_at_share_kept": {name: precision_at(s, good, share) for name, s in signals.items()},
        "default_filter_precision": round(sum(r["wer"] <= GOOD_WER for r in kept) / max(1, len(kept)), 3),
        "avg_logprob_sweep": sweep,
    }


def _kept_and_rejected(table: list[dict]) -> dict:
    """The labels' WER against ``truth``, kept and rejected, and the rejected ones counted by reason."""
    rejected = [r for r in table if r["kept"] == "0"]
    return {
        "kept_wer": corpus_wer([(r["truth"], r["text"]) for r in table if r["kept"] == "1"]),
        "rejected_wer": corpus_wer([(r["truth"], r["text"]) for r in rejected]),
        "rejected_by_reason": dict(sorted(Counter(r.get("reason", "") for r in rejected).items())),
    }


def throughput(teacher_ct2: str, audio: Path, lang: str, root: Path) -> dict:
    """Audio-seconds per second: ``label`` (in-process) against faster-whisper's BatchedInferencePipeline
    file by file, on the same CTranslate2 folder; model load included on both sides."""
    import faster_whisper

    from whisperft.audio import SAMPLE_RATE, decode_audio
    from whisperft.label.request import LabelRequest
    from whisperft.label.run import label

    cached = root / "throughput.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    files = sorted(audio.iterdir())
    seconds = sum(len(decode_audio(f)) for f in files) / SAMPLE_RATE
    out = root / "label-throughput"
    t0 = time.perf_counter()
    label(LabelRequest(audio=(str(audio),), model=teacher_ct2, out=out, lang=lang))
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = faster_whisper.WhisperModel(teacher_ct2, device="cpu", compute_type="default", cpu_threads=2)
    pipe = faster_whisper.BatchedInferencePipeline(model)
    for f in files:
        segments, _ = pipe.transcribe(str(f), language=lang, batch_size=8, beam_size=5, without_timestamps=True)
        list(segments)
    ref = time.perf_counter() - t0
    out = {"audio_s": round(seconds, 1), "label_s": round(ours, 1), "batched_pipeline_s": round(ref, 1),
           "ratio": round(ref / ours, 2)}  # fmt: skip
    cached.write_text(json.dumps(out))
    return out


def train_run(name: str, root: Path, lang: str, stores: list[tuple[Path, float]]) -> Path:
    """Train run ``name`` from bundled base on ``stores`` ((store, hours) mixed in proportion to hours)."""
    run = root / f"run-{name}"
    if (run / "final" / "config.json").is_file():
        return run / "final"
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["language"] = lang
    if len(stores) == 1:
        cfg["data"]["store"] = str(stores[0][0])
    else:
        cfg["data"].pop("store", None)
        cfg["data"]["mix"] = [{"store": str(s), "weight": round(h, 4), "name": s.name} for s, h in stores]
    cfg["train"]["output_dir"] = str(run)
    path = root / f"run-{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    seconds, _ = cli("train", str(path), "--no-progress")
    (root / f"run-{name}-seconds.json").write_text(json.dumps({"train_s": round(seconds)}))
    return run / "final"


def test_scores(model: Path, store: Path, out: Path) -> dict[str, float]:
    """Normalized WER and CER (percent) of ``model`` on T (``store``'s test split)."""
    metrics = out / "metrics.json"
    if not metrics.is_file():
        out.mkdir(parents=True, exist_ok=True)
        cli("eval", "--model", str(model), "--data", str(store), "--split", "test", "--out", str(metrics))
    values = json.loads(metrics.read_text())
    return {k: round(100 * values[k], 1) for k in ("wer_normalized", "cer_normalized")}


def hours(store: Path) -> float:
    """Hours of the store's train split (prepare_report.json)."""
    return float(json.loads((store / "prepare_report.json").read_text())["train"]["hours"])


def chapter_trial(
    splits: dict[str, list[real_speech.Prompt]], root: Path, lang: str, teacher: Path
) -> tuple[dict, Path]:
    """U read in a row as one long recording with no text beside it (pauses of 0.3-0.9 s, as
    demo/chapter.py's ``build_real`` makes a chapter), labelled by ``teacher`` (``label`` cuts it at the
    pauses Silero VAD hears), then prepared and mixed with L like run (b). Each clip's reference is the
    prompts whose middle lies in it; ``recording_wer`` is every label in order against every prompt in
    order, which cutting cannot bias. Returns (the labels' figures, the prepared store)."""
    from devkit.synth import render_recording

    folder = root / "U-chapter"
    recording, truth_path = folder / "chapter01.mp3", folder / "truth.json"
    if not truth_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(35)
        order = sorted(splits["U"], key=lambda p: p.clip)
        rng.shuffle(order)
        items = [("file", str(root / "clips" / p.clip), rng.uniform(0.3, 0.9)) for p in order]
        said = render_recording(items, recording)
        truth_path.write_text(json.dumps([{**s, "text": p.text} for s, p in zip(said, order, strict=True)],
                                         ensure_ascii=False, indent=1) + "\n")  # fmt: skip
    truth = json.loads(truth_path.read_text())
    out = root / "label-chapter"
    if not (out / "manifest.csv").is_file():
        cli("label", str(recording), "--model", str(teacher), "--lang", lang, "--out", str(out),
            "--min-avg-logprob", str(LOOSE_LOGPROB))  # fmt: skip
    table = sorted((r for r in rows(out) if r["start"]), key=lambda r: float(r["start"]))
    for r in table:
        a, b = float(r["start"]), float(r["end"])
        r["truth"] = " ".join(t["text"] for t in truth if a <= (t["start"] + t["end"]) / 2 < b)
    kept = [r for r in table if r["kept"] == "1"]
    speech = sum(t["end"] - t["start"] for t in truth)
    in_kept = sum(
        max(0.0, min(float(r["end"]), t["end"]) - max(float(r["start"]), t["start"])) for r in kept for t in truth
    )
    figures = {
        "recording_minutes": round(truth[-1]["end"] / 60, 1),
        "clips": len(table),
        "share_kept": round(len(kept) / max(1, len(table)), 3),
        "speech_in_kept_clips": round(in_kept / speech, 3),
        "recording_wer": corpus_wer([(" ".join(t["text"] for t in truth), " ".join(r["text"] for r in table))]),
        **_kept_and_rejected(table),
        "median_clip_s": round(statistics.median(float(r["duration"]) for r in table), 1) if table else None,
    }
    return figures, prepared(filtered_manifest(out), lang, root / "store-U-chapter")


def run_language(lang: str) -> dict:
    from whisperft.export.ct2 import ct2_folder

    root = DATA / "pseudo" / lang
    splits = write_folders(lang, root)
    truth = {p.clip: p.text for p in splits["U"]}
    store_l = prepared(root / "L", lang, root / "store-L")
    store_true = prepared(root / "U-true", lang, root / "store-U-true")
    result: dict = {"splits": {k: {"clips": len(v), "minutes": round(sum(p.seconds for p in v) / 60, 1)}
                               for k, v in splits.items()}}  # fmt: skip
    final_a = train_run("a", root, lang, [(store_l, 1.0)])
    labels: dict[str, Path] = {}
    for tag, teacher in (("a", str(final_a)), ("base", "bundled:base")):
        folder, seconds = labelled(teacher, root, tag, lang)
        greedy, greedy_s = labelled(teacher, root, f"{tag}-greedy", lang, beams=1)
        labels[tag] = folder
        quality = label_quality(folder, greedy, truth, teacher, lang)
        result[f"labels_{tag}"] = {**quality, "label_s": seconds, "greedy_label_s": greedy_s,
                                   "agreement_cost": round(greedy_s / seconds, 2)}  # fmt: skip
        print(lang, tag, json.dumps(result[f"labels_{tag}"]), flush=True)
    stores = {
        "b": prepared(filtered_manifest(labels["a"]), lang, root / "store-U-a-tight"),
        "b_loose": prepared(labels["a"] / "manifest.csv", lang, root / "store-U-a"),
        "b_strict": prepared(filtered_manifest(labels["a"], STRICT_LOGPROB), lang, root / "store-U-a-strict"),
        "c": prepared(unfiltered_manifest(labels["a"]), lang, root / "store-U-a-unfiltered"),
        "d": prepared(filtered_manifest(labels["base"]), lang, root / "store-U-base-tight"),
        "e": store_true,
    }
    result["chapter_labels"], stores["chapter"] = chapter_trial(splits, root, lang, final_a)
    print(lang, "chapter", json.dumps(result["chapter_labels"]), flush=True)
    finals = {"a": final_a}
    for name, store in stores.items():
        finals[name] = train_run(name, root, lang, [(store_l, hours(store_l)), (store, hours(store))])
    for name in RUNS:
        result[name] = test_scores(finals[name], store_l, root / f"eval-{name}")
        result[name]["hours_u"] = round(hours(stores[name]), 3) if name in stores else 0.0
        timing = root / f"run-{name}-seconds.json"
        result[name]["train_s"] = json.loads(timing.read_text())["train_s"] if timing.is_file() else None
        print(lang, name, result[name], flush=True)
    result["throughput"] = throughput(str(ct2_folder("bundled:base")), root / "U-audio", lang, root)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--langs", nargs="+", default=list(real_speech.LANGS), choices=real_speech.LANGS)
    args = parser.parse_args()
    setup()
    for lang in args.langs:
        r = run_language(lang)
        (DATA / "pseudo" / f"result-{lang}.json").write_text(json.dumps(r, indent=1, ensure_ascii=False) + "\n")
        a, b, c, e = (r[k]["wer_normalized"] for k in "abce")
        closed = round((a - b) / (a - e), 2) if a != e else None
        lb = r["labels_a"]
        emit(
            f"pseudo_label_{lang}",
            target="(b) closes >= half the gap from (a) to (e); (b) beats (c); kept labels' WER <= half the "
            "rejected ones'; label >= BatchedInferencePipeline's audio-seconds per second",
            ratio=closed,
            **{f"run_{k}_wer_normalized": r[k]["wer_normalized"] for k in RUNS},
            **{f"run_{k}_hours_u": r[k]["hours_u"] for k in RUNS},
            **{f"run_{k}_cer_normalized": r[k]["cer_normalized"] for k in RUNS},
            b_beats_c=b < c,
            labels_a=lb,
            labels_base=r["labels_base"],
            chapter_labels=r["chapter_labels"],
            throughput=r["throughput"],
            splits=r["splits"],
            setting=f"configs/real-es.yaml from bundled base with language={lang}, the same steps for every run; "
            "L/U/T split by prompt text, U mixed with L at weights in proportion to hours; labels by "
            f"whisperft label (faster-whisper, beam 5), kept at a mean token log-probability of {MIN_AVG_LOGPROB:g} "
            "(the default) unless a run says otherwise; WER normalized, on T",
        )


if __name__ == "__main__":
    main()
