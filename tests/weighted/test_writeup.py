"""Write-up 003 beside lmlab: set shares, test set, grid size and criteria rows from constructed metrics."""

from __future__ import annotations

import math

import pytest

from lmlab.weighted.criteria import GridPoint
from lmlab.weighted.writeup import SETS, run_criteria, writeup_rows
from lmlab.writeup import NOT_AT_EMBEDDED


def cfg(q, gamma, up, acceptance, accuracy=0.8, unknowns=0):
    return {"accuracy": accuracy, "precision": 0.7, "recall": 0.7, "f1": 0.7, "acceptance_rate": acceptance,
            "gamma": gamma, "accept_fraction": q, "upweights_accept": up, "gen_unknowns": unknowns}


METRICS = {"gamma": 4.0, "gold_acceptance_rate": 0.5,
           "odds_1_2-baseline": cfg(1 / 3, 1.0, 1, 0.40),
           "odds_1_2-accept": cfg(1 / 3, 4.0, 1, 0.75), "odds_1_2-reject": cfg(1 / 3, 4.0, 0, 0.20),
           "odds_1_8-accept": cfg(1 / 9, 4.0, 1, 0.35, accuracy=0.55)}
POINTS = [GridPoint("odds_1_2-baseline", "odds_1_2", "accept", 1.0, False),
          *(GridPoint(f"odds_1_2-{v}", "odds_1_2", v, g) for v in ("accept", "reject") for g in (2.0, 4.0, 8.0)),
          *(GridPoint(f"odds_1_8-{v}", "odds_1_8", v, g) for v in ("accept", "reject") for g in (2.0, 4.0))]
# wl_data's summary at the default 480 rows: 160, 120, 96, 53 Accept rows.
SUMMARY = {"odds_1_1": {"odds": [1, 1], "n": 480, "n_accept": 240}, "odds_1_2": {"odds": [1, 2], "n": 480, "n_accept": 160},
           "odds_1_3": {"odds": [1, 3], "n": 480, "n_accept": 120}, "odds_1_4": {"odds": [1, 4], "n": 480, "n_accept": 96},
           "odds_1_8": {"odds": [1, 8], "n": 480, "n_accept": 53}}


def rows(metrics=METRICS, summary=SUMMARY):
    criteria, scope = run_criteria(metrics, POINTS, band=(0.3, 0.7), min_accuracy=0.6, most_share=0.5)
    return {r.quantity: r for r in writeup_rows(metrics, summary, criteria, n_grid=len(POINTS), n_test=240,
                                                scope=scope)}


def test_the_write_ups_set_proportions_are_odds_and_lmlab_matches_them():
    assert {label: round(100 * a / (a + r)) for label, ((a, r), _) in SETS.items()} == {
        label: pct for label, (_, pct) in SETS.items()}  # the write-up's own figures are accept / (accept + reject)
    out = rows()
    for label, (_, pct) in SETS.items():
        row = out[f"training set {label} (accept:reject): accepted share, %"]
        assert row.writeup == f"{pct} %" and row.passed is True
    assert out["training set 1:8 (accept:reject): accepted share, %"].lmlab == pytest.approx(100 * 53 / 480)
    assert "odds_1_8" in out["training set 1:8 (accept:reject): accepted share, %"].source


def test_a_set_off_by_a_percent_fails_and_a_missing_set_says_so():
    summary = {**SUMMARY, "odds_1_4": {"odds": [1, 4], "n": 480, "n_accept": 91}}  # 19 %
    del summary["odds_1_3"]
    out = rows(summary=summary)
    assert out["training set 1:4 (accept:reject): accepted share, %"].passed is False
    missing = out["training set 1:3 (accept:reject): accepted share, %"]
    assert missing.passed is None and "no set with odds 1:3" in missing.lmlab
    upstream = {"frac_1_2": {"odds": [1, 1], "n": 480, "n_accept": 240}}  # the "1 in N" reading of 1:2 = 50 %
    assert rows(summary=upstream)["training set 1:2 (accept:reject): accepted share, %"].passed is None


def test_test_set_grid_and_criteria_rows():
    out = rows()
    assert out["test set: rows"].lmlab == 240.0 and out["test set: rows"].writeup == "2,024"
    assert out["test set: accepted share, %"].lmlab == 50.0
    assert out["training runs in the grid"].lmlab == 11.0 and out["training runs in the grid"].writeup == "19"
    assert out["decisions of Qwen/Qwen2.5-7B-Instruct (acceptance, accuracy)"].lmlab == NOT_AT_EMBEDDED
    mono = out["criterion 3: (set, variant) groups monotone in gamma, %"]
    assert mono.lmlab == 100.0 and mono.passed is True  # 1:2 accept 0.40 -> 0.75, reject 0.40 -> 0.20
    low, high = (out[f"criterion 4: {w} predicted acceptance, %"] for w in ("lowest", "highest"))
    assert (low.lmlab, low.passed, high.lmlab, high.passed) == (20.0, True, 75.0, True)
    accuracy = out["criterion 5: runs with accuracy > 60 %, %"]
    assert accuracy.lmlab == 75.0 and accuracy.passed is True and "odds_1_8-accept@gamma=4" in accuracy.note
    assert out["criterion 2: unparseable generated decisions"].passed is True
    assert "4 of the 11 grid runs" in accuracy.source


def test_failing_criteria_are_reported_as_failed():
    metrics = {**METRICS, "odds_1_2-accept": cfg(1 / 3, 4.0, 1, 0.38, accuracy=0.5, unknowns=3),
               "odds_1_2-reject": cfg(1 / 3, 4.0, 0, 0.45, accuracy=0.5)}
    out = rows(metrics)
    assert out["criterion 3: (set, variant) groups monotone in gamma, %"].passed is False
    assert out["criterion 3: (set, variant) groups monotone in gamma, %"].lmlab == 0.0
    assert out["criterion 4: highest predicted acceptance, %"].passed is False
    assert out["criterion 5: runs with accuracy > 60 %, %"].passed is False
    unknowns = out["criterion 2: unparseable generated decisions"]
    assert unknowns.passed is False and unknowns.lmlab == 3.0


def test_runs_outside_the_grid_are_named_and_not_counted():
    metrics = {**METRICS, "odds_1_8-accept": cfg(1 / 9, 8.0, 1, 0.01, accuracy=0.1)}  # 1:8 has no gamma 8
    criteria, scope = run_criteria(metrics, POINTS, band=(0.3, 0.7), min_accuracy=0.6, most_share=0.5)
    assert "outside the grid, not counted: odds_1_8-accept" in scope
    low = next(c for c in criteria if c.name == "acceptance_span_low")
    assert math.isclose(low.value, 0.20)
