"""The lab's grid and the write-up's success criteria, on constructed frames: each passes and fails."""

from __future__ import annotations

import pandas as pd
import pytest

from lmlab.config import load_mapping, load_value
from lmlab.weighted.criteria import (
    GridPoint,
    acceptance_span,
    accuracy_for_most,
    criteria_markdown,
    evaluate_criteria,
    grid_complete,
    grid_points,
    monotone_gamma_effect,
    select_grid,
    valid_predictions,
)
from lmlab.weighted.params import GridParams, WeightedConfig


def run(config, variant, q, gamma, acceptance, accuracy=0.7, unknowns=0):
    return {"config": config, "variant": variant, "accept_fraction": q, "gamma": gamma,
            "acceptance_rate": acceptance, "accuracy": accuracy, "gen_unknowns": unknowns}


def frame(*runs):
    return pd.DataFrame(list(runs))


# The shape the theory predicts (acceptance up with gamma for accept, down for reject), at odds 1:2 with the
# gamma-1 baseline and at odds 1:4 without one.
GOOD = [run("odds_1_2-baseline", "accept", 1 / 3, 1.0, 0.40),
        run("odds_1_2-accept", "accept", 1 / 3, 2.0, 0.50), run("odds_1_2-accept", "accept", 1 / 3, 4.0, 0.72),
        run("odds_1_2-reject", "reject", 1 / 3, 2.0, 0.30), run("odds_1_2-reject", "reject", 1 / 3, 4.0, 0.22),
        run("odds_1_4-accept", "accept", 0.2, 2.0, 0.35), run("odds_1_4-accept", "accept", 0.2, 4.0, 0.45),
        run("odds_1_4-reject", "reject", 0.2, 2.0, 0.10, accuracy=0.55), run("odds_1_4-reject", "reject", 0.2, 4.0, 0.05,
                                                                               accuracy=0.52)]


def test_grid_of_the_repository_is_the_labs_19_runs(repo_root):
    params = repo_root / "params.yaml"
    configs = load_mapping(WeightedConfig, params, "weighted.configs")
    grid = load_value(params, "weighted.grid", GridParams)
    points = grid_points(configs, grid, {"odds_1_2-baseline": 1.0})
    assert len(points) == 19
    assert [p for p in points if not p.swept] == [GridPoint("odds_1_2-baseline", "odds_1_2", "accept", 1.0, False)]
    per_set = {}
    for p in points:
        per_set.setdefault((p.set, p.variant), []).append(p.gamma)
    assert per_set[("odds_1_2", "reject")] == [2.0, 4.0, 8.0] and per_set[("odds_1_8", "accept")] == [2.0, 4.0]
    assert len(per_set) == 8  # the baseline joins the (odds_1_2, accept) list
    assert per_set[("odds_1_2", "accept")] == [1.0, 2.0, 4.0, 8.0]


def test_a_swept_config_whose_set_has_no_grid_gammas_is_not_in_the_grid():
    configs = {"odds_1_1-accept": WeightedConfig("odds_1_1"), "odds_1_2-accept": WeightedConfig("odds_1_2")}
    points = grid_points(configs, GridParams(gammas={"odds_1_2": (2.0, 4.0)}), {})
    assert [(p.config, p.gamma) for p in points] == [("odds_1_2-accept", 2.0), ("odds_1_2-accept", 4.0)]


def test_select_grid_splits_runs_on_config_and_gamma():
    runs = frame(*GOOD, run("odds_1_4-accept", "accept", 0.2, 8.0, 0.6))
    points = [GridPoint(c, "s", "accept", g) for c, g in zip(runs["config"][:-1], runs["gamma"][:-1])]
    inside, outside = select_grid(runs, points)
    assert len(inside) == len(GOOD) and list(outside["gamma"]) == [8.0]
    assert select_grid(runs.iloc[0:0], points)[0].empty


def test_monotone_passes_when_every_group_moves_the_predicted_way():
    result = monotone_gamma_effect(frame(*GOOD))
    assert result.passed is True and result.value == 1.0
    groups = result.evidence["groups"]
    assert set(groups) == {"1:2/accept", "1:2/reject", "1:4/accept", "1:4/reject"}
    assert groups["1:2/reject"]["gammas"] == [1.0, 2.0, 4.0]  # the baseline joins both variants of its set
    assert groups["1:2/reject"]["acceptance"] == [0.40, 0.30, 0.22] and groups["1:2/reject"]["expected"] == "down"


def test_monotone_fails_on_a_reversal_a_wrong_direction_or_no_effect():
    reversal = [dict(r) for r in GOOD]
    reversal[2]["acceptance_rate"] = 0.45  # odds 1:2 accept: 0.40, 0.50, 0.45
    result = monotone_gamma_effect(frame(*reversal))
    assert result.passed is False and result.value == 0.75 and "not: 1:2/accept" in result.summary
    wrong = [dict(r) for r in GOOD]
    wrong[5]["acceptance_rate"], wrong[6]["acceptance_rate"] = 0.45, 0.35  # odds 1:4 accept falls
    assert monotone_gamma_effect(frame(*wrong)).evidence["groups"]["1:4/accept"]["observed"] == "down"
    assert monotone_gamma_effect(frame(*wrong)).passed is False
    flat = [dict(r) for r in GOOD]
    flat[6]["acceptance_rate"] = 0.35  # no effect at all is not a monotone effect
    assert monotone_gamma_effect(frame(*flat)).passed is False


def test_monotone_cannot_be_judged_with_one_gamma_per_group():
    result = monotone_gamma_effect(frame(GOOD[1], GOOD[3], GOOD[5]))
    assert result.passed is None and result.value is None and "two gammas" in result.summary


def test_acceptance_span_reports_both_ends_with_their_runs():
    low, high = acceptance_span(frame(*GOOD))
    assert (low.passed, high.passed) == (True, True)
    assert low.value == 0.05 and low.evidence["min_run"] == "odds_1_4-reject@gamma=4"
    assert high.value == 0.72 and high.evidence["max_run"] == "odds_1_2-accept@gamma=4"
    assert low.evidence["n_within_band"] == 5
    narrow = frame(*[r for r in GOOD if 0.3 <= r["acceptance_rate"] <= 0.5])
    low, high = acceptance_span(narrow)
    assert (low.passed, high.passed) == (True, False)  # 0.30 reaches the low end, 0.50 not the high end
    low, _ = acceptance_span(frame(*[r for r in GOOD if r["acceptance_rate"] > 0.3]))
    assert low.passed is False and "needs <= 0.3" in low.summary


def test_accuracy_for_most_counts_runs_above_the_threshold():
    result = accuracy_for_most(frame(*GOOD))
    assert result.passed is True and result.value == pytest.approx(7 / 9)
    assert result.evidence["below"] == {"odds_1_4-reject@gamma=2": 0.55, "odds_1_4-reject@gamma=4": 0.52}
    half = frame(*GOOD[:2], GOOD[7], GOOD[8])  # 2 of 4 above: half is not most
    assert accuracy_for_most(half).passed is False
    assert accuracy_for_most(half, most_share=0.4).passed is True
    exactly = frame(run("a", "accept", 0.5, 2.0, 0.5, accuracy=0.6))  # "> 60 %": 0.6 itself fails
    assert accuracy_for_most(exactly).passed is False


def test_valid_predictions_and_grid_completeness():
    assert valid_predictions(frame(*GOOD)).passed is True
    bad = [dict(r) for r in GOOD]
    bad[3]["gen_unknowns"] = 2
    result = valid_predictions(frame(*bad))
    assert result.passed is False and result.value == 2.0 and "odds_1_2-reject@gamma=2: 2" in result.summary
    assert valid_predictions(frame(*GOOD).drop(columns=["gen_unknowns"])).passed is None
    points = [GridPoint("odds_1_2-accept", "odds_1_2", "accept", g) for g in (2.0, 4.0, 8.0)]
    result = grid_complete(frame(*GOOD), points)
    assert result.passed is False and result.value == 2.0 and result.evidence["missing"] == ["odds_1_2-accept@gamma=8"]
    assert grid_complete(frame(*GOOD), points[:2]).passed is True


def test_evaluate_criteria_and_the_markdown_table():
    criteria = evaluate_criteria(frame(*GOOD), points=[])
    assert [c.name for c in criteria] == ["grid_complete", "valid_predictions", "monotone_gamma_effect",
                                          "acceptance_span_low", "acceptance_span_high", "accuracy_for_most"]
    assert criteria[0].passed is False  # an empty grid is not a complete one
    table = criteria_markdown(criteria[1:])
    assert "| Metrics show monotonic gamma effects (within variant+proportion) | PASS | 4 of 4" in table
    assert "| 1:4/reject | 2, 4 | 0.100, 0.050 | down | yes |" in table
    with pytest.raises(ValueError, match="one row per"):
        evaluate_criteria(frame(GOOD[1], GOOD[1]))
    with pytest.raises(ValueError, match="columns"):
        evaluate_criteria(frame(*GOOD).drop(columns=["accuracy"]))
