"""BENCHMARKS.md is generated from benchmarks/results/*.json: every result has a short row, and the page is current."""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks import run_all, summary

RESULTS = summary.load()


def test_every_result_has_a_summary():
    missing = [r["claim"] for r in RESULTS if r["claim"] not in summary.SUMMARIES]
    assert not missing, "add an entry to benchmarks/summary.py's SUMMARIES for these claims"
    assert {s.area for s in summary.SUMMARIES.values()} <= set(summary.AREAS)


@pytest.mark.parametrize("result", RESULTS, ids=[r["claim"] for r in RESULTS])
def test_row_is_short(result):
    area, line = summary.row(result)
    assert area in summary.AREAS
    cells = line.strip("|").split(" | ")
    assert len(cells) == 6, line  # no | inside a cell
    assert max(len(c) for c in cells) <= 160, line


def test_missed_targets_are_marked():
    missed = {r["claim"] for r in RESULTS if summary.MISSED in summary.row(r)[1]}
    assert {"batched_generation", "ct2_eval"} <= missed


def test_page_is_current():
    page = summary.PAGE.read_text(encoding="utf-8")
    assert page == summary.render(RESULTS), "BENCHMARKS.md is out of date: run python -m benchmarks.summary"
    docs = summary.PSEUDO_PAGE.read_text(encoding="utf-8")
    assert summary.PSEUDO_BEGIN in docs and docs == summary.pseudo_page(RESULTS), "run python -m benchmarks.summary"


def test_run_all_scripts_exist():
    for name in run_all.SCRIPTS:
        assert importlib.util.find_spec(f"benchmarks.{name}") is not None, name
