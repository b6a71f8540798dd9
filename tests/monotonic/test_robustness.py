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


def _aggregate(ppl_mono: float, sr_base: float, sr_mono: float) -> dict:
    """A constructed, qualified aggregate with everything the plot reads."""
    from lmlab.monotonic.criteria import qualify_robustness

    def arm(sr: float, inc: float) -> dict:
        return {"success_rate": sr, "success_rate_ci_low": sr, "success_rate_ci_high": sr,
                "ppl_increase_pct": inc, "ppl_increase_pct_ci_low": inc, "ppl_increase_pct_ci_high": inc}

    base = 143.0
    return qualify_robustness({
        "ppl": {"baseline": base, "monotonic": ppl_mono, "monotonic_before_recovery": 2 * ppl_mono},
        "ppl_gap_pct": 100 * (ppl_mono - base) / base, "threshold": 0.15,
        "attack_reduction_pct": 100 * (sr_base - sr_mono) / sr_base, "attack_change_pp": 100 * (sr_mono - sr_base),
        "hotflip": {"baseline": arm(sr_base, 20.0), "monotonic": arm(sr_mono, 0.0)},
        "uat": {"baseline": arm(1.0, 50.0), "monotonic": arm(1.0, 0.5)}})


def _texts(fig) -> str:
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_the_plot_says_a_collapsed_models_robustness_is_not_meaningful(tmp_path):
    import matplotlib.pyplot as plt

    from lmlab.monotonic.robustness import plot_robustness, robustness_figure

    collapsed = _aggregate(105_000.0, 0.6, 0.0)
    fig = robustness_figure(collapsed)
    text = _texts(fig)
    assert "NOT MEANINGFUL" in text and "monotonic (not meaningful)" in text and "attack reduction withheld" in text
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)
    fine = _aggregate(150.0, 0.6, 0.3)
    fig = robustness_figure(fine)
    assert "NOT MEANINGFUL" not in _texts(fig) and "HotFlip attack reduction +50.0 %" in _texts(fig)
    plt.close(fig)
    plot_robustness(collapsed, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
