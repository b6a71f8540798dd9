"""lmlab.report.intervals: both interval shapes are found, and the review diff tells effect from noise."""

from __future__ import annotations

from lmlab.report.intervals import (
    interval_for,
    is_interval_key,
    metric_leaves,
    noise_aware_diff,
    render_diff,
    render_listing,
)

MONOTONIC = {"ppl_gap_pct": 3.3, "ppl_gap_pct_ci_low": 2.8, "ppl_gap_pct_ci_high": 3.8,
             "hotflip": {"baseline": {"success_rate": 0.7, "success_rate_ci_low": 0.55, "success_rate_ci_high": 0.82}}}
ILM = {"specialization_gain": {"A1": 0.70}, "specialization_gain_ci": {"A1": {"low": 0.66, "high": 0.73}},
       "ppl": {"A1": {"B2": 12.0}}, "ppl_ci": {"A1": {"B2": {"low": 11.0, "high": 13.5}}}}


def test_flat_sibling_intervals():
    assert interval_for(MONOTONIC, "ppl_gap_pct") == (2.8, 3.8)
    assert interval_for(MONOTONIC, "hotflip.baseline.success_rate") == (0.55, 0.82)


def test_parallel_tree_intervals():
    assert interval_for(ILM, "specialization_gain.A1") == (0.66, 0.73)
    assert interval_for(ILM, "ppl.A1.B2") == (11.0, 13.5)


def test_no_interval_is_never_invented():
    assert interval_for(ILM, "ppl.A1.B1") is None
    assert interval_for({"x": 1.0, "x_ci_low": 0.5}, "x") is None  # half an interval is none
    assert interval_for({"n": 80}, "n") is None


def test_metric_leaves_dot_nested_keys():
    assert metric_leaves({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_interval_keys_are_not_metrics():
    leaves = metric_leaves({**MONOTONIC, **ILM})
    assert set(leaves) == {"ppl_gap_pct", "hotflip.baseline.success_rate", "specialization_gain.A1", "ppl.A1.B2"}
    assert is_interval_key("accuracy_ci.causal.low") and is_interval_key("baseline.f1_ci_high")
    assert not is_interval_key("accuracy.causal")


def test_diff_marks_changes_against_the_old_interval():
    old = {"reports/metrics/monotonic.json": MONOTONIC}
    new = {"reports/metrics/monotonic.json": {**MONOTONIC, "ppl_gap_pct": 3.5, "ppl_gap_pct_ci_low": 3.0,
                                               "hotflip": {"baseline": {"success_rate": 0.9}}}}
    changes = {c.key: c for c in noise_aware_diff(old, new)}
    assert set(changes) == {"ppl_gap_pct", "hotflip.baseline.success_rate"}  # interval keys are not reported
    assert changes["ppl_gap_pct"].verdict.startswith("within")
    assert changes["hotflip.baseline.success_rate"].verdict.startswith("OUTSIDE")
    assert changes["ppl_gap_pct"].new_interval == (3.0, 3.8)


def test_diff_of_added_removed_and_uncertain_metrics():
    changes = {c.key: c.verdict for c in noise_aware_diff({"m.json": {"a": 1, "b": 2.0}}, {"m.json": {"a": 2, "c": 1.0}})}
    assert changes == {"a": "no interval", "b": "removed", "c": "added"}


def test_rendered_diff_puts_effects_first_and_counts_them():
    old = {"m.json": {"x": 1.0, "x_ci_low": 0.9, "x_ci_high": 1.1, "y": 1.0, "y_ci_low": 0.0, "y_ci_high": 2.0}}
    new = {"m.json": {"x": 0.95, "y": 5.0}}
    text = render_diff(noise_aware_diff(old, new), "HEAD~1", "HEAD")
    assert "2 metrics differ between HEAD~1 and HEAD: 1 outside the old 95% interval, 1 within it" in text
    rows = [line for line in text.splitlines() if line.startswith("| m.json")]
    assert "`y`" in rows[0] and "OUTSIDE" in rows[0] and "`x`" in rows[1]
    assert render_diff([], "a", "b") == "No metric differs between a and b.\n"


def test_interval_for_flat_siblings_rule() -> None:
    data = {"ppl_gap_pct": 3.3, "ppl_gap_pct_ci_low": 2.8, "ppl_gap_pct_ci_high": 3.8,
            "frac_1_2-accept": {"accuracy": 0.8, "accuracy_ci_low": 0.75, "accuracy_ci_high": 0.85, "f1": 0.7},
            "hotflip": {"baseline": {"success_rate": 0.7, "success_rate_ci_low": 0.55, "success_rate_ci_high": 0.82}}}
    assert interval_for(data, "ppl_gap_pct") == (2.8, 3.8)
    assert interval_for(data, "frac_1_2-accept.accuracy") == (0.75, 0.85)
    assert interval_for(data, ["hotflip", "baseline", "success_rate"]) == (0.55, 0.82)
    assert interval_for(data, "frac_1_2-accept.f1") is None  # no siblings for f1: never borrowed from accuracy
    assert interval_for(data, "hotflip.monotonic.success_rate") is None


def test_interval_for_parallel_tree_rule() -> None:
    data = {"specialization_gain": {"A1": 0.7}, "specialization_gain_ci": {"A1": {"low": 0.6, "high": 0.8}},
            "ppl": {"A1": {"B2": 40.0, "C1": 50.0}}, "ppl_ci": {"A1": {"B2": {"low": 35.0, "high": 45.0}}},
            "accuracy": {"causal": 0.8}, "accuracy_ci": {"causal": {"low": 0.7, "high": None}},
            "agreement_rate": 0.6}
    assert interval_for(data, "specialization_gain.A1") == (0.6, 0.8)
    assert interval_for(data, "ppl.A1.B2") == (35.0, 45.0)
    assert interval_for(data, "ppl.A1.C1") is None
    assert interval_for(data, "accuracy.causal") == (0.7, None)  # an undefined bound is still "has an interval"
    assert interval_for(data, "agreement_rate") is None
    assert interval_for(data, "no.such.key") is None


def test_is_interval_key_single_keys() -> None:
    assert is_interval_key("accuracy_ci_low") and is_interval_key("f1_ci_high") and is_interval_key("accuracy_ci")
    assert not is_interval_key("accuracy") and not is_interval_key("ci_lower")


def test_listing_puts_each_metric_on_one_line_with_its_interval():
    text = render_listing({"reports/metrics/monotonic.json": MONOTONIC, "reports/metrics/ilm.json": ILM})
    lines = text.splitlines()
    assert lines[0] == "reports/metrics/monotonic.json" and "reports/metrics/ilm.json" in lines
    gap = next(line for line in lines if "ppl_gap_pct" in line)
    assert gap.split() == ["ppl_gap_pct", "3.3", "[2.8,", "3.8]"]  # the interval folded into its metric's line
    assert next(line for line in lines if "ppl.A1.B2" in line).split()[1:] == ["12", "[11,", "13.5]"]
    assert not any("_ci" in line for line in lines)  # interval keys take no line of their own
    assert sum(line.startswith("  ") for line in lines) == 4  # one line per metric, intervals excluded
