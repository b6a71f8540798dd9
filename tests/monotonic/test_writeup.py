"""lmlab.monotonic.writeup: write-up 004's numbers beside lmlab's, the criteria as passed=, no fake gain."""

from __future__ import annotations

import json

import pytest

from lmlab.monotonic.criteria import qualify_robustness
from lmlab.monotonic.writeup import WRITEUP, writeup_rows
from lmlab.writeup import NOT_AT_EMBEDDED, read_rows, write_rows


def _metrics(ppl_mono: float, sr_mono: float) -> dict:
    base, sr_base = 10.0, 0.6
    return qualify_robustness({
        "ppl": {"baseline": base, "monotonic": ppl_mono, "pretrained": 9.0, "monotonic_before_recovery": 18.9},
        "ppl_gap_pct": 100 * (ppl_mono - base) / base,
        "attack_reduction_pct": 100 * (sr_base - sr_mono) / sr_base, "attack_change_pp": 100 * (sr_mono - sr_base),
        "hotflip": {"baseline": {"success_rate": sr_base}, "monotonic": {"success_rate": sr_mono}},
        "uat": {"baseline": {"ppl_increase_pct": 0.4}, "monotonic": {"ppl_increase_pct": 0.2}}})


def _row(rows, start: str):
    found = [r for r in rows if r.quantity.startswith(start)]
    assert len(found) == 1, start
    return found[0]


def test_rows_of_a_run_that_meets_the_strong_criteria():
    rows = writeup_rows(_metrics(10.7, 0.18))
    assert _row(rows, "perplexity of the monotone model right after").lmlab == 18.9
    assert _row(rows, "perplexity of the monotone model right after").writeup == "~18-20"
    assert _row(rows, "perplexity ratio the constraint costs").lmlab == pytest.approx(2.1)
    assert _row(rows, "perplexity gap").lmlab == pytest.approx(7.0)
    assert _row(rows, "HotFlip success rate, baseline").lmlab == pytest.approx(60.0)  # a rate shown in %
    assert _row(rows, "HotFlip attack reduction").lmlab == pytest.approx(70.0)
    criteria = [r for r in rows if r.quantity.startswith("success")]
    assert [r.passed for r in criteria] == [True, True, True, True, True, True, None]
    assert _row(rows, "constrained FFN parameters").lmlab == NOT_AT_EMBEDDED


def test_a_collapsed_monotone_model_shows_no_reduction_and_fails():
    rows = writeup_rows(_metrics(105_000.0, 0.0))
    for start in ("HotFlip attack reduction", "local tiny-model simulation: attack reduction"):
        value = _row(rows, start).lmlab
        assert isinstance(value, str) and value.startswith("not meaningful")
    assert "not a gain" in _row(rows, "HotFlip success rate, monotone").note
    assert all(r.passed is False for r in rows if r.passed is not None)
    assert not any(isinstance(r.lmlab, float) and r.lmlab >= 40 for r in rows if "reduction" in r.quantity)


def test_rows_round_trip_through_the_file(tmp_path):
    rows = writeup_rows(_metrics(11.0, 0.3))
    write_rows(tmp_path / "monotonic.json", "monotonic", WRITEUP, rows)
    payload = json.loads((tmp_path / "monotonic.json").read_text())
    assert payload["writeup"].startswith("004_") and read_rows(payload) == rows
