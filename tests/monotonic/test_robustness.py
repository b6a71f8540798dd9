"""lmlab.monotonic.robustness: aggregation of per-example attack results (both success definitions, reductions)."""

from __future__ import annotations

import math

import pytest
import torch

from lmlab.monotonic.robustness import _per_example, _reductions, _summary


def _rows(model: str, clean: list[float], attacked: list[float]) -> list[dict]:
    return [{"model": model, **r} for r in _per_example(torch.tensor(clean), torch.tensor(attacked), 0.15)]


def test_summary_reports_both_definitions_and_cis():
    rows = _rows("baseline", [1.0, 4.0, 2.0, 2.0], [1.2, 4.5, 2.0, 2.1])
    s = _summary(rows, resamples=200, seed=0)
    assert s["success_rate"] == 0.5  # +0.2 and +0.5 nats exceed ln(1.15); 0 and 0.1 do not
    assert s["success_rate_rel_nll"] == 0.25  # only 1.0 -> 1.2 is +20% relative NLL
    assert s["ppl_increase_pct"] == pytest.approx(100 * math.expm1(0.2), rel=1e-5)
    assert s["success_rate_ci_low"] <= s["success_rate"] <= s["success_rate_ci_high"]


def test_reductions_relative_and_absolute():
    rows = _rows("baseline", [1.0] * 4, [2.0, 2.0, 2.0, 1.0]) + _rows("monotonic", [1.0] * 4, [2.0, 1.0, 1.0, 1.0])
    out = _reductions(rows, resamples=200, seed=0)
    assert out["attack_reduction_pct"] == pytest.approx(100 * (0.75 - 0.25) / 0.75)
    assert out["attack_change_pp"] == pytest.approx(-50.0)


def test_reduction_is_undefined_when_the_baseline_never_succeeds():
    rows = _rows("baseline", [1.0] * 3, [1.0] * 3) + _rows("monotonic", [1.0] * 3, [2.0] * 3)
    out = _reductions(rows, resamples=50, seed=0)
    assert math.isnan(out["attack_reduction_pct"]) and out["attack_change_pp"] == pytest.approx(100.0)
