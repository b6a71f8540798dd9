"""lmlab.monotonic.criteria: the write-up's success tiers and the rule that a collapsed model's robustness is no gain."""

from __future__ import annotations

import math

import pytest

from lmlab.monotonic.criteria import WITHHELD_KEYS, assess, qualify_robustness, verdict


def _metrics(gap, reduction, change=-40.0) -> dict:
    """A constructed aggregate: only the keys the criteria read or withhold, plus one measurement."""
    return {"ppl": {"baseline": 143.0, "monotonic": 143.0 * (1 + gap / 100) if gap is not None else None},
            "ppl_gap_pct": gap, "attack_reduction_pct": reduction, "attack_reduction_pct_ci_low": reduction,
            "attack_reduction_pct_ci_high": reduction, "attack_reduction_pct_rel_nll": reduction,
            "attack_change_pp": change, "attack_change_pp_rel_nll": change,
            "hotflip": {"baseline": {"success_rate": 0.6}, "monotonic": {"success_rate": 0.0}}}


def test_the_135m_collapse_is_not_a_gain():
    """Observed: monotone perplexity ~105,000 vs 143, reduction 100 %, gap ~74,000 %."""
    gap = 100.0 * (105_000 - 143) / 143
    out = qualify_robustness(_metrics(gap, 100.0, change=-60.0))
    assert out["attack_reduction_meaningful"] is False
    assert all(out[k] is None for k in WITHHELD_KEYS)
    assert not any(out["criteria"].values())
    assert out["ppl_gap_pct"] == gap and out["hotflip"]["monotonic"]["success_rate"] == 0.0  # measurements stay
    text = verdict(out)
    assert "NOT MEANINGFUL" in text and "+73326.6 %" in text and "withheld" in text and "100" not in text


@pytest.mark.parametrize(("gap", "reduction", "minimal", "strong"), [
    (7.2, 69.0, True, True),       # the write-up's simulation figures: strong success
    (12.0, 69.0, True, False),     # gap between 10 and 15 %
    (7.2, 50.0, True, False),      # reduction between 40 and 60 %
    (7.2, 40.0, False, False),     # strict inequality, as written ("> 40%")
    (15.0, 69.0, False, False),    # "< 15%" is strict too
    (-3.0, 45.0, True, False),     # a monotone model better than the baseline passes the gap criterion
])
def test_tiers(gap, reduction, minimal, strong):
    out = assess(gap, reduction)
    assert out["criteria"]["minimal"] is minimal and out["criteria"]["strong"] is strong
    assert out["criteria"]["ppl_gap_lt_15"] is (gap < 15) and out["criteria"]["ppl_gap_lt_10"] is (gap < 10)


def test_a_passing_gap_keeps_the_reduction_even_when_it_is_a_loss():
    out = qualify_robustness(_metrics(3.3, -7.1, change=5.0))
    assert out["attack_reduction_meaningful"] is True and out["attack_reduction_pct"] == -7.1
    assert out["attack_change_pp"] == 5.0
    assert out["criteria"]["ppl_gap_lt_15"] and not out["criteria"]["attack_reduction_gt_40"]
    assert "HotFlip attack reduction -7.1 %" in verdict(out) and "none passed" in verdict(out)


@pytest.mark.parametrize("gap", [None, math.inf, math.nan])
def test_an_undefined_gap_fails_everything(gap):
    out = qualify_robustness(_metrics(gap, 80.0))
    assert out["attack_reduction_meaningful"] is False and out["attack_reduction_pct"] is None
    assert not any(out["criteria"].values())
    assert "NOT MEANINGFUL" in verdict(out) and "undefined" in verdict(out)


def test_an_undefined_reduction_fails_the_attack_criteria_only():
    """The baseline's attack never succeeded: no reduction to judge, the gap criterion still stands."""
    out = qualify_robustness(_metrics(5.0, math.nan))
    assert out["attack_reduction_meaningful"] is False
    assert out["criteria"]["ppl_gap_lt_10"] and not out["criteria"]["attack_reduction_gt_40"]
    assert "undefined" in verdict(out) and "NOT MEANINGFUL" not in verdict(out)


def test_qualify_does_not_change_its_input():
    metrics = _metrics(500.0, 90.0)
    qualify_robustness(metrics)
    assert metrics["attack_reduction_pct"] == 90.0 and "criteria" not in metrics
