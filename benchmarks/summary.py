"""BENCHMARKS.md from benchmarks/results/*.json: one short row per result, grouped by area, missed targets marked.

    python -m benchmarks.summary   # rewrite BENCHMARKS.md from the result files (make bench does it too)

A result file holds one benchmark's whole record, as ``common.emit`` printed it, plus its date and machine.
Each claim has an entry in SUMMARIES: its area, what it measures, a function giving the short result cell
and the target, and a function saying whether the target was met. The long detail stays in the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "BENCHMARKS.md"
AREAS = ["data", "training", "decoding", "export", "long recordings", "languages"]

MET, MISSED, NO_TARGET = "met", "**missed**", "no target"
PSEUDO_RUNS = ("a", "b", "b_loose", "b_strict", "c", "d", "e", "chapter")  # bench_pseudo_label's runs
PSEUDO_PAGE = ROOT / "docs" / "no-text.md"  # carries the experiment's table, between these two markers
PSEUDO_BEGIN, PSEUDO_END = "<!-- pseudo-label table: python -m benchmarks.summary -->", "<!-- end of table -->"
PSEUDO_WHAT = {
    "a": "L only",
    "b": "L + U labelled by (a), default filter",
    "b_loose": "the same, at openai-whisper's log-prob floor, -1.0",
    "b_strict": "the same, kept at log-prob ≥ -0.2",
    "c": "L + U labelled by (a), unfiltered",
    "d": "L + U labelled by bundled base, default filter",
    "e": "L + U with its true text (the oracle)",
    "chapter": "L + U read as one recording, labelled by (a), default filter",
}


@dataclass(frozen=True)
class Summary:
    """How one claim's result reads in BENCHMARKS.md."""

    area: str
    what: str
    result: Callable[[dict], str]  # the short cell: the figures a reader compares
    target: str  # the target, short (the result's own "target" field has it in full)
    met: Callable[[dict], bool] | None = None  # None: a measurement with no target


def pct(x: float) -> str:
    """A fraction as a percentage: 0.1085 -> '10.9%'."""
    return f"{100 * x:.1f}%"


def _export(r: dict) -> str:
    return (
        f"{r['ours_s']} s vs {r['reference_faster_whisper_int8_s']} s; WER {pct(r['wer_normalized'])} vs "
        f"{pct(r['wer_normalized_faster_whisper_int8'])}; {r['size_mb']:g} MB vs {r['size_mb_faster_whisper_int8']} MB"
    )


def _beams(r: dict) -> str:
    return (
        f"short clips: WER {r['short_txt_beam1_wer']}% → {r['short_txt_beam5_wer']}%, time ×{r['ratio']}; "
        f"3-min subtitles: WER {r['long_srt_beam1_wer']}% → {r['long_srt_beam5_wer']}%, "
        f"{r['long_srt_beam1_s']} s → {r['long_srt_beam5_s']} s"
    )


def _real_speech(r: dict) -> str:
    levers = "".join(
        f", {name} {r[f'{key}_test_wer_normalized']}%"
        for key, name in (("lora", "LoRA"), ("freeze_encoder", "frozen encoder"))
        if f"{key}_test_wer_normalized" in r
    )
    return (
        f"WER {r['before_test_wer_normalized']}% → {r['full_test_wer_normalized']}% (÷{r['ratio']}){levers}; "
        f"English {r['before_en_espeak_wer_normalized']}% → {r['full_en_espeak_wer_normalized']}%"
    )


def _real_speech_met(r: dict) -> bool:
    english = r["full_en_espeak_wer_normalized"] - r["before_en_espeak_wer_normalized"]
    return r["ratio"] >= 2 and english <= 3


def _pseudo(r: dict) -> str:
    runs = ", ".join(f"{k} {r[f'run_{k}_wer_normalized']}%" for k in "abce")  # the targets' runs; all: docs table
    lb, t = r["labels_a"], r["throughput"]
    return (
        f"WER on T: {runs}; labels kept {lb['kept_wer']}% vs rejected {lb['rejected_wer']}% "
        f"({pct(lb['share_kept'])} kept); ×{t['ratio']} the pipeline"
    )


def _pseudo_met(r: dict) -> bool:
    lb = r["labels_a"]
    return (
        (r["ratio"] or 0) >= 0.5
        and r["b_beats_c"]
        and lb["kept_wer"] <= lb["rejected_wer"] / 2
        and r["throughput"]["ratio"] >= 1
    )


def _new_language(r: dict) -> str:
    return (
        f"WER {r['before_wer_normalized']}% → {r['proxy_wer_normalized']}% under {r['proxy_language']}'s token, "
        f"{r['new_wer_normalized']}% with a new token"
    )


def _learnt(r: dict) -> bool:
    return max(r["proxy_wer_normalized"], r["new_wer_normalized"]) < r["before_wer_normalized"]


def _levers(r: dict) -> str:
    return (
        f"test WER: full {r['full_test_wer']}%, LoRA {r['lora_test_wer']}%, augmented {r['augment_test_wer']}% "
        f"(base {r['before_test_wer']}%)"
    )


def _detection(r: dict) -> str:
    before, after = r["steps_0_en_as_sv"], r["steps_12_en_as_sv"]
    return f"English clips detected as Swedish: {before} of 20 before, {after} after 12 steps"


EXPORT = Summary(
    "export", "client on a 3-min recording vs faster-whisper int8: wall, WER, size", _export, "WER ≤ its + 2 points",
    lambda r: r["wer_normalized"] <= r["wer_normalized_faster_whisper_int8"] + 0.02,
)  # fmt: skip
SUMMARIES: dict[str, Summary] = {
    "store_size": Summary(
        "data", "feature store size per hour of speech, vs the recipe's padded float32",
        lambda r: f"{r['ours_mb_per_hour']} MB/h vs {r['recipe_mb_per_hour']} MB/h (÷{r['ratio']})", "≥ 10× smaller",
        lambda r: r["ratio"] >= 10,
    ),
    "prepare_speed": Summary(
        "data", "prepare: seconds of audio featurized per second, vs the recipe's map",
        lambda r: f"{r['ours_audio_s_per_s']} vs {r['recipe_audio_s_per_s']} (×{r['ratio']})", "≥ 3×",
        lambda r: r["ratio"] >= 3,
    ),
    "resample_soxr_vs_ffmpeg": Summary(
        "data", "8 kHz audio read at 16 kHz: energy left above 4 kHz",
        lambda r: f"soxr {r['soxr_above_4khz_db']} dB, ffmpeg {r['ffmpeg_above_4khz_db']} dB", "a measurement",
    ),
    "augment_cost": Summary(
        "data", "what augmentation costs: the audio track's size, training speed",
        lambda r: f"Opus track +{r['opus_audio_track_mb_per_hour']} MB/h (FLAC +{r['flac_audio_track_mb_per_hour']}); "
        f"steps ×{r['ratio']}", "a cost to report",
    ),
    "train_loop_overhead": Summary(
        "training", "whisperft's training loop vs a bare PyTorch loop, steps/s",
        lambda r: f"{r['ours_steps_per_s']} vs {r['bare_steps_per_s']} steps/s (×{r['ratio']})", "≥ 0.9×",
        lambda r: r["ratio"] >= 0.9,
    ),
    "packing_throughput": Summary(
        "training", "data.pack: audio trained per second vs one padded clip per window",
        lambda r: f"×{r['ratio']}; dev WER {pct(r['dev_wer_packed'])} vs {pct(r['dev_wer_padded'])}",
        "≥ 4×, dev WER no worse", lambda r: r["ratio"] >= 4 and r["dev_wer_packed"] <= r["dev_wer_padded"],
    ),
    "levers_demo": Summary("training", "the demo's 150 steps: full, LoRA, augmentation", _levers, "a comparison"),
    "telephone_augment": Summary(
        "training", "data.augment.telephone_prob 0.5: WER on GSM phone audio",
        lambda r: f"{r['reference_full_phone_wer']}% → {r['ours_telephone_phone_wer']}%; wideband "
        f"{r['full_test_wer']}% → {r['telephone_test_wer']}%", "lower phone WER",
        lambda r: r["ours_telephone_phone_wer"] < r["reference_full_phone_wer"],
    ),
    "real_speech_es": Summary(
        "training", "real voice (Asterisk, Spanish): normalized WER, base → fine-tune", _real_speech,
        "÷2 WER, English ≤ +3 points", _real_speech_met,
    ),
    "real_speech_fr": Summary(
        "training", "real voice (Asterisk, French): normalized WER, base → fine-tune", _real_speech,
        "÷2 WER, English ≤ +3 points", _real_speech_met,
    ),
    "pseudo_label_es": Summary(
        "training", "pseudo-labels (Asterisk, Spanish): runs a-e, normalized WER on T", _pseudo,
        "b closes ≥ ½ of a→e; b < c; kept ≤ ½ rejected WER; ≥ ×1", _pseudo_met,
    ),
    "pseudo_label_fr": Summary(
        "training", "pseudo-labels (Asterisk, French): runs a-e, normalized WER on T", _pseudo,
        "b closes ≥ ½ of a→e; b < c; kept ≤ ½ rejected WER; ≥ ×1", _pseudo_met,
    ),
    "real_speech_es_lr_1e-5": Summary(
        "training", "the same, one run at learning rate 1e-5 instead of 2.5e-5",
        lambda r: f"WER {r['full_test_wer_normalized']}%; English +{r['english_espeak_wer_change_points']} points",
        "a comparison",
    ),
    "demo_finetune": Summary(
        "training", "make demo: bundled base learns synthesized Swedish, 150 steps",
        lambda r: f"WER {r['before_test_wer']}% → {r['after_test_wer']}% (CER {r['before_test_cer']}% → "
        f"{r['after_test_cer']}%), {r['total_minutes']} min in all", "a measurement",
    ),
    "plan_estimate_accuracy": Summary(
        "training", "whisperft plan's estimate vs the measured peak of real steps (CPU)",
        lambda r: f"within {pct(r['measured_max_error'])}", "within 15%",
        lambda r: r["measured_max_error"] <= r["tolerance"],
    ),
    "sweep_overhead_per_trial_vs_sequential": Summary(
        "training", "whisperft sweep on Ray: overhead per trial vs a process per trial",
        lambda r: f"{r['ours_overhead_s_per_trial']} s vs {r['reference_sequential_overhead_s_per_trial']} s "
        f"(×{r['ratio']})", "≤ 1×", lambda r: r["ratio"] <= 1,
    ),
    "batched_generation": Summary(
        "decoding", "eval's batched generation vs one utterance at a time",
        lambda r: f"{r['ours_utt_per_s']} vs {r['reference_utt_per_s']} utt/s (×{r['ratio']}), identical "
        f"{r['identical']}", "≥ 3×, identical outputs", lambda r: r["ratio"] >= 3,
    ),
    "ct2_eval": Summary(
        "decoding", "eval of a CTranslate2 int8 export vs PyTorch per utterance",
        lambda r: f"{r['ours_utt_per_s']} vs {r['reference_utt_per_s']} utt/s (×{r['ratio']}); WER "
        f"{pct(r['wer_normalized_ct2_int8'])} vs {pct(r['wer_normalized_pytorch_float32'])}",
        "≥ 3×, WER within 1 point",
        lambda r: r["ratio"] >= 3
        and abs(r["wer_normalized_ct2_int8"] - r["wer_normalized_pytorch_float32"]) <= 0.01,
    ),
    "runaway_decoding": Summary(
        "decoding", "the duration bound and repetition stop on a model that loops",
        lambda r: f"{r['ours_seconds']} s vs {r['reference_seconds']:g} s; WER {r['wer_pct_bounded']}% vs "
        f"{r['wer_pct_unbounded']}%", "faster, WER no worse",
        lambda r: r["ratio"] > 1 and r["wer_pct_bounded"] <= r["wer_pct_unbounded"],
    ),
    "ct2_vs_faster_whisper": Summary(
        "decoding", "transcribe on a CTranslate2 folder vs faster-whisper batched, 3 min",
        lambda r: f"{r['ours_s']} s vs {r['reference_faster_whisper_batched_s']} s; WER "
        f"{pct(r['wer_normalized_ours'])} vs {pct(r['wer_normalized_faster_whisper_batched'])}",
        "wall ≤ 1.15×, WER ≤ its",
        lambda r: r["ratio"] <= 1.15
        and r["wer_normalized_ours"] <= r["wer_normalized_faster_whisper_batched"],
    ),
    "ct2_one_second_clip": Summary(
        "decoding", "transcribe a 1 s clip on CTranslate2, whole process",
        lambda r: f"{r['ours_s']} s (faster-whisper {r['reference_faster_whisper_batched_s']} s)", "≤ 2.5 s",
        lambda r: r["ours_s"] <= 2.5,
    ),
    "beam_size_ct2": Summary("decoding", "beam 1 → 5 on faster-whisper", _beams, "to choose the default"),
    "beam_size_pytorch": Summary("decoding", "beam 1 → 5 on PyTorch", _beams, "to choose the default"),
    "transcribe_timestamps_wer": Summary(
        "decoding", "transcribe with and without timestamp tokens, 16 clips of 7 s",
        lambda r: f"WER {r['wer_with_timestamps']}% with, {r['wer_without_timestamps']}% without", "a measurement",
    ),
    "short_window_in_30s_clients": Summary(
        "export", "a short-window model run in 30 s windows (faster-whisper, openai-whisper)",
        lambda r: f"WER {r['wer_trained_window']}% → {r['wer_30s_window']}%", "a cost to report",
    ),
    "export_ggml_f16_vs_faster_whisper": EXPORT,
    "export_ggml_q8_0_vs_faster_whisper": EXPORT,
    "export_ggml_q5_0_vs_faster_whisper": EXPORT,
    "export_openai_float16_vs_faster_whisper": EXPORT,
    "export_onnx_float32_vs_faster_whisper": EXPORT,
    "export_onnx_int8_vs_faster_whisper": EXPORT,
    "longform_transcription": Summary(
        "long recordings", "transcribe, 10 min, vs transformers' chunked pipeline",
        lambda r: f"{r['ours_x_realtime']}× vs {r['pipeline_x_realtime']}× real time; WER "
        f"{pct(r['wer_normalized_ours'])} vs {pct(r['wer_normalized_pipeline'])}", "≥ 1.5×, WER no worse",
        lambda r: r["ratio"] >= 1.5 and r["wer_normalized_ours"] <= r["wer_normalized_pipeline"],
    ),
    "longform_ct2_int8": Summary(
        "long recordings", "transcribe on CTranslate2 int8, 10 min, vs the same pipeline",
        lambda r: f"{r['ours_x_realtime']}× vs {r['pipeline_x_realtime']}× real time; WER "
        f"{pct(r['wer_normalized_ours'])} vs {pct(r['wer_normalized_pipeline'])}", "≥ 3×, WER no worse",
        lambda r: r["ratio"] >= 3 and r["wer_normalized_ours"] <= r["wer_normalized_pipeline"],
    ),
    "audiobook_alignment": Summary(
        "long recordings", "a read chapter cut into clips: matching speech recovered",
        lambda r: f"{pct(r['finetune_recovered'])} with the demo's fine-tune, {pct(r['base_recovered'])} with "
        f"base; label CER 0, median boundary {r['finetune_boundary_ms_median']} ms",
        "no difference in a clip, label CER 0, boundary < 0.1 s",
        lambda r: r["finetune_leaks"] == r["base_leaks"] == 0
        and r["finetune_label_cer_max"] == r["base_label_cer_max"] == 0
        and r["finetune_boundary_ms_median"] < 100,
    ),
    "audiobook_real_voice": Summary(
        "long recordings", "the same on real voices (Asterisk prompts read in a row)",
        lambda r: f"{pct(r['ours_recovered'])} recovered in {r['clips']} clips; label CER {r['label_cer_max']:g}",
        "no difference in a clip, label CER 0", lambda r: r["leaks"] == 0 and r["label_cer_max"] == 0,
    ),
    "audiobook_align_speed": Summary(
        "long recordings", "word timestamps of a 5.5-min chapter: faster-whisper vs PyTorch",
        lambda r: f"{r['ours_ct2_s']} s vs {r['reference_pytorch_s']} s (×{r['ratio']})", "faster",
        lambda r: r["ratio"] > 1,
    ),
    "audiobook_finetune": Summary(
        "long recordings", "training on aligned clips vs the same sentences cut by hand",
        lambda r: f"WER {r['ours_aligned_wer']}% vs {r['reference_true_cuts_wer']}%", "≤ hand cuts' + 2 points",
        lambda r: r["ours_aligned_wer"] <= r["reference_true_cuts_wer"] + 2,
    ),
    "new_language_eo": Summary(
        "languages", "Esperanto (no Whisper token), 40 steps: proxy vs new token", _new_language,
        "learns the language", _learnt,
    ),
    "new_language_ky": Summary(
        "languages", "Kyrgyz (no Whisper token), 40 steps: proxy vs new token", _new_language,
        "learns the language", _learnt,
    ),
    "language_detection_after_finetuning": Summary(
        "languages", "--lang auto after a Swedish fine-tune, on English clips", _detection, "to choose a behaviour"
    ),
}  # fmt: skip


def load() -> list[dict]:
    """Every result file, in SUMMARIES' order (then by name)."""
    order = {claim: i for i, claim in enumerate(SUMMARIES)}
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    return sorted(results, key=lambda r: (order.get(r["claim"], len(order)), r["claim"]))


def row(r: dict) -> tuple[str, str]:
    """(area, table row) of one result; a claim without a summary gets its ratio and full target."""
    s = SUMMARIES.get(r["claim"])
    if s is None:
        ratio = f"×{r['ratio']}" if isinstance(r.get("ratio"), (int, float)) else "-"
        return "other", f"| `{r['claim']}` | | {ratio} | {r.get('target', '-')} | ? | {r.get('date', '')} |"
    status = NO_TARGET if s.met is None else (MET if s.met(r) else MISSED)
    return s.area, f"| `{r['claim']}` | {s.what} | {s.result(r)} | {s.target} | {status} | {r.get('date', '')} |"


def render(results: list[dict]) -> str:
    machines = sorted({r.get("machine", "unknown") for r in results})
    by_area: dict[str, list[str]] = {a: [] for a in AREAS}
    for r in results:
        area, line = row(r)
        by_area.setdefault(area, []).append(line)
    missed = [r["claim"] for r in results if MISSED in row(r)[1]]
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m benchmarks.summary` (make bench) from benchmarks/results/*.json. -->",
        "",
        f"Measured on: {'; '.join(machines)}. `make bench` runs one script per claim in `benchmarks/`, "
        "whisperft and its reference in the same run. Timings are the best of 3 runs, except one run each for "
        "augment_cost, levers_demo, runaway_decoding, telephone_augment, export_*, real_speech_*, beam_size_*, "
        "new_language_* and audiobook_*. Rows whose record has a `source` were measured outside `make bench`. "
        "Each row's full record (every figure, the setting, notes on the run) is `benchmarks/results/CLAIM.json`.",
        "",
        f"Targets missed: {', '.join(f'`{c}`' for c in missed) or 'none'}.",
        "",
    ]
    for area, lines in by_area.items():
        if not lines:
            continue
        out += [f"## {area.capitalize()}", "", "| claim | what | result | target | status | date |"]
        out += ["|---|---|---|---|---|---|", *lines, ""]
    return "\n".join(out)


def pseudo_table(results: list[dict]) -> str:
    """The docs page's table of bench_pseudo_label: normalized WER and CER on T per run and language, and
    the labels' WER kept and rejected."""
    langs = [r for r in results if r["claim"].startswith("pseudo_label_")]
    if not langs:
        return "(not measured yet: `python -m benchmarks.run_all bench_pseudo_label`)"
    names = [r["claim"].rsplit("_", 1)[1] for r in langs]
    out = ["| run | " + " | ".join(f"{n} WER | {n} CER" for n in names) + " |", "|---|" + "---|---|" * len(langs)]
    for k in PSEUDO_RUNS:
        cells = [f"{r.get(f'run_{k}_wer_normalized', '–')}% | {r.get(f'run_{k}_cer_normalized', '–')}%" for r in langs]
        out.append(f"| ({k}) {PSEUDO_WHAT[k]} | " + " | ".join(cells) + " |")
    for tag, who in (("labels_a", "(a)"), ("labels_base", "bundled base"), ("chapter_labels", "(a), one recording")):
        if not any(tag in r for r in langs):
            continue
        cells = [_label_cells(r.get(tag)) for r in langs]
        out.append(f"| labels by {who}: their WER | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _label_cells(labels: dict | None) -> str:
    """Two table cells: the labels' WER kept (with the share kept) and rejected."""
    if labels is None:
        return "– | –"
    rejected = "none rejected" if labels["rejected_wer"] is None else f"{labels['rejected_wer']}% rejected"
    return f"{labels['kept_wer']}% kept ({pct(labels['share_kept'])}) | {rejected}"


def pseudo_page(results: list[dict]) -> str:
    """docs/no-text.md with its table rewritten from ``results``."""
    page = PSEUDO_PAGE.read_text(encoding="utf-8")
    head, _, rest = page.partition(PSEUDO_BEGIN)
    _, _, tail = rest.partition(PSEUDO_END)
    return f"{head}{PSEUDO_BEGIN}\n{pseudo_table(results)}\n{PSEUDO_END}{tail}"


def write(results: list[dict] | None = None) -> None:
    results = load() if results is None else results
    PAGE.write_text(render(results), encoding="utf-8")
    PSEUDO_PAGE.write_text(pseudo_page(results), encoding="utf-8")
    print(f"wrote {PAGE} and {PSEUDO_PAGE}'s table")


if __name__ == "__main__":
    write()
