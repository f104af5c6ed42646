"""``whisperft eval --report``: an HTML page of where the errors are, next to metrics.json.

One self-contained file (styles inline, the plot embedded as PNG): the worst utterances with
reference and hypothesis aligned word by word, the most frequent substitutions, deletions and
insertions, and WER by clip duration.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from whisperft.metrics import Utterance, align_words, rate

REPORT = "report.html"
SUMMARY_HEAD = ("utterances", "audio (min)", "WER", "CER", "WER normalized", "CER normalized", "runaway")
WORST = 25  # utterances shown
TOP = 20  # substitutions, deletions and insertions shown
DURATION_BINS = (0.0, 2.0, 4.0, 8.0, 15.0, 30.0, float("inf"))  # seconds

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f3f3f3; text-align: left; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.sub { background: #fde68a; } .del { background: #fecaca; text-decoration: line-through; }
.ins { background: #bbf7d0; } .pair td { vertical-align: top; } .label { color: #666; width: 3em; }
"""


def _aligned(ref: str, hyp: str) -> tuple[str, str]:
    """Reference and hypothesis as HTML, with substituted, deleted and inserted words marked."""
    r_out, h_out = [], []
    for op, r_words, h_words in align_words(ref, hyp):
        r_txt, h_txt = html.escape(" ".join(r_words)), html.escape(" ".join(h_words))
        if op == "equal":
            r_out.append(r_txt)
            h_out.append(h_txt)
        elif op == "substitute":
            r_out.append(f'<span class="sub">{r_txt}</span>')
            h_out.append(f'<span class="sub">{h_txt}</span>')
        elif op == "delete":
            r_out.append(f'<span class="del">{r_txt}</span>')
        else:
            h_out.append(f'<span class="ins">{h_txt}</span>')
    return " ".join(r_out), " ".join(h_out)


def error_counts(utts: Sequence[Utterance]) -> dict[str, Counter]:
    """Counted word substitutions (ref -> hyp), deletions and insertions over all utterances."""
    counts: dict[str, Counter] = {"substitute": Counter(), "delete": Counter(), "insert": Counter()}
    for u in utts:
        for op, r_words, h_words in align_words(u.reference, u.hypothesis):
            if op == "substitute":
                counts[op].update(zip(r_words, h_words, strict=True))
            elif op == "delete":
                counts[op].update(r_words)
            elif op == "insert":
                counts[op].update(h_words)
    return counts


def wer_by_duration(utts: Sequence[Utterance]) -> list[tuple[str, int, float | None]]:
    """(bin label, utterances, WER) for each duration bin that holds any utterance; WER is None in a bin
    whose references have no words (undefined, as in metrics.json)."""
    out = []
    for lo, hi in pairwise(DURATION_BINS):
        inside = [u for u in utts if lo <= u.duration < hi]
        words = sum(u.words for u in inside)
        if inside:
            label = f"{lo:g}–{hi:g} s" if hi != float("inf") else f"≥ {lo:g} s"
            out.append((label, len(inside), rate(sum(u.word_errors for u in inside), words)))
    return out


def _percent(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _plot(bins: list[tuple[str, int, float | None]]) -> str:
    """The WER-by-duration bar chart as a base64 PNG."""
    import matplotlib  # deferred: slow to import, only --report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: as above

    fig, ax = plt.subplots(figsize=(7, 3.2))
    heights = [100 * (b[2] or 0.0) for b in bins]  # an undefined WER draws no bar
    ax.bar([b[0] for b in bins], heights, color="tab:blue")
    for i, (_, n, _) in enumerate(bins):
        ax.text(i, heights[i], f"n={n}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("WER (%)")
    ax.set_xlabel("clip duration")
    ax.set_title("WER by clip duration")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table(head: Sequence[str], rows: list[Sequence[Any]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if isinstance(c, int | float) else f"<td>{c}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def render_report(summary: dict[str, Any], utts: Sequence[Utterance]) -> str:
    """The whole page. ``summary``: metrics.json's fields."""
    worst = sorted(utts, key=lambda u: (-u.word_errors, -(u.word_errors / max(1, u.words)), u.id))[:WORST]
    rows = []
    for u in worst:
        ref, hyp = _aligned(u.reference, u.hypothesis)
        rows.append(
            f'<tr class="pair"><td rowspan="2">{html.escape(u.id)}</td><td rowspan="2" class="num">'
            f'{u.duration:.1f}</td><td rowspan="2" class="num">{u.word_errors}/{u.words}</td>'
            f'<td class="label">ref</td><td>{ref}</td></tr><tr class="pair"><td class="label">hyp</td>'
            f"<td>{hyp}</td></tr>"
        )
    counts = error_counts(utts)
    subs = [(html.escape(r), html.escape(h), n) for (r, h), n in counts["substitute"].most_common(TOP)]
    dels = [(html.escape(w), n) for w, n in counts["delete"].most_common(TOP)]
    ins = [(html.escape(w), n) for w, n in counts["insert"].most_common(TOP)]
    bins = wer_by_duration(utts)
    pct = {k: _percent(summary[k]) for k in ("wer", "cer", "wer_normalized", "cer_normalized")}
    runaway = summary.get("token_limit_hits", 0) + summary.get("repetition_stops", 0)  # decodes that looped
    overview = [summary["num_utterances"], round(summary["audio_seconds"] / 60, 1), *pct.values(), runaway]
    notes = "".join(f"<p>note: {html.escape(n)}</p>" for n in summary.get("notes", []))
    title = f"{summary.get('model')} on {summary.get('split')} ({summary.get('language')})"
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _table(SUMMARY_HEAD, [overview]),
        notes,
        f'<h2 id="worst">Worst {len(worst)} utterances</h2>',
        '<p><span class="sub">substituted</span> <span class="del">deleted</span> '
        '<span class="ins">inserted</span></p>',
        "<table><tr><th>id</th><th>s</th><th>errors</th><th></th><th>text</th></tr>" + "".join(rows) + "</table>",
        '<h2 id="substitutions">Most frequent substitutions</h2>',
        _table(["reference", "hypothesis", "times"], subs),
        '<h2 id="deletions">Most frequent deletions and insertions</h2>',
        _table(["deleted word", "times"], dels),
        _table(["inserted word", "times"], ins),
        '<h2 id="duration">WER by clip duration</h2>',
        _table(["duration", "utterances", "WER"], [[b[0], b[1], _percent(b[2], 1)] for b in bins]),
        f'<img alt="WER by clip duration" src="data:image/png;base64,{_plot(bins)}">' if bins else "",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
