"""Decision metrics against hand-computed values; scoring and generation plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.errors import InputError
from lmlab.weighted.data import DecisionExample
from lmlab.weighted.evaluation import (
    CI_KEYS,
    CI_METRICS,
    CONTRACT,
    EXTRAS,
    classification_metrics,
    decision_intervals,
    evaluate_configs,
    evaluate_decisions,
    score_decisions,
    weighted_metrics,
)
from lmlab.weighted.params import WeightedConfig
from lmlab.weighted.tokens import encode_decisions


def test_metrics_match_hand_computation():
    y_true = [1, 1, 0, 0, 1, 0]
    y_pred = [1, 0, 0, 1, 1, 0]
    p = [0.9, 0.4, 0.2, 0.6, 0.8, 0.1]
    m = classification_metrics(y_true, y_pred, p)
    # TP=2 FN=1 FP=1 TN=2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["reject_precision"] == pytest.approx(2 / 3)
    assert m["acceptance_rate"] == pytest.approx(0.5)
    assert m["gold_acceptance_rate"] == pytest.approx(0.5)
    # AUC: positives {0.9, 0.4, 0.8} vs negatives {0.2, 0.6, 0.1}: 8 of 9 pairs ordered correctly
    assert m["auc"] == pytest.approx(8 / 9)
    brier = np.mean([(0.9 - 1) ** 2, (0.4 - 1) ** 2, 0.2**2, 0.6**2, (0.8 - 1) ** 2, 0.1**2])
    assert m["brier"] == pytest.approx(brier)


def test_metrics_all_reject_has_zero_precision_not_an_error():
    m = classification_metrics([1, 0, 1, 0], [0, 0, 0, 0])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["acceptance_rate"] == 0.0


def _encoded(tokenizer):
    users = ["Strength: the method is novel.", "Weakness: the baselines are weak. Note: minor typos remain.",
             "Strength: the theory is sound.", "Weakness: the idea is incremental."]
    examples = [DecisionExample(f"r{i}", (("user", u),), "\\boxed{Accept}" if i % 2 == 0 else "\\boxed{Reject}",
                                i % 2 == 0, {}) for i, u in enumerate(users)]
    return encode_decisions(tokenizer, examples, 128)[0]


def test_scoring_is_independent_of_batching(tiny_gpt2, tiny_tokenizer):
    rows = _encoded(tiny_tokenizer)
    together = score_decisions(tiny_gpt2, rows, tiny_tokenizer.pad_token_id, batch_size=4)
    alone = np.concatenate([score_decisions(tiny_gpt2, [r], tiny_tokenizer.pad_token_id) for r in rows])
    assert np.allclose(together, alone, atol=1e-5)
    assert ((together > 0) & (together < 1)).all()


def test_evaluate_counts_unknowns_and_agreement(tiny_gpt2, tiny_tokenizer):
    rows = _encoded(tiny_tokenizer)
    result = evaluate_decisions(tiny_gpt2, tiny_tokenizer, rows, batch_size=3, max_new_tokens=4)
    m = result["metrics"]
    assert len(result["generations"]) == len(rows) == m["n"]
    assert 0 <= m["gen_unknowns"] <= len(rows)
    assert 0.0 <= m["agreement"] <= 1.0
    # an untrained model does not write \boxed{...}: every generation is an unknown, none agrees
    assert m["gen_unknowns"] == len(rows) and m["agreement"] == 0.0
    assert np.isnan(m["gen_acceptance_rate"])
    for key in CI_METRICS:  # intervals of the scoring metrics over the 4 rows
        assert m[f"{key}_ci_low"] <= m[key] <= m[f"{key}_ci_high"]


def _result(accuracy: float, ids: list[str]) -> dict:
    metrics = {k: accuracy for k in CONTRACT + EXTRAS} | {"gold_acceptance_rate": 0.5, "n": len(ids), "mean_p_accept": 0.4}
    metrics |= {k: accuracy + (0.1 if k.endswith("_high") else -0.1) for k in CI_KEYS}
    return {"metrics": metrics, "p_accept": [0.25] * len(ids), "generations": [f"g{i}" for i in range(10)], "ids": ids}


def test_weighted_metrics_layout():
    configs = {"odds_1_2-baseline": WeightedConfig("odds_1_2", "accept", "weighted.baseline_gamma"),
               "odds_1_8-reject": WeightedConfig("odds_1_8", "reject")}
    ids = ["r0", "r1"]
    results = {"odds_1_2-baseline": _result(0.75, ids), "odds_1_8-reject": _result(0.5, ids)}
    trained = {"odds_1_2-baseline": {"gamma": 1.0, "variant": "accept", "steps": 4},
               "odds_1_8-reject": {"gamma": 4.0, "variant": "reject", "steps": 4}}
    metrics, full = weighted_metrics(configs, {"odds_1_2": 1 / 3, "odds_1_8": 1 / 9}, 4, results, trained)
    # no top-level `gamma`: the swept value is the param, each config keeps its effective gamma
    assert set(metrics) == {"gold_acceptance_rate", "odds_1_2-baseline", "odds_1_8-reject"}
    assert metrics["gold_acceptance_rate"] == 0.5
    reject = metrics["odds_1_8-reject"]
    assert set(reject) == set(CONTRACT + EXTRAS + CI_KEYS) | {"gamma", "accept_fraction", "upweights_accept"}
    assert (reject["accuracy_ci_low"], reject["f1_ci_high"]) == pytest.approx((0.4, 0.6))
    assert (reject["gamma"], reject["accept_fraction"], reject["upweights_accept"]) == (4.0, 1 / 9, 0)
    assert metrics["odds_1_2-baseline"]["upweights_accept"] == 1 and metrics["odds_1_2-baseline"]["accuracy"] == 0.75
    assert full["ids"] == ids and list(full["configs"]) == ["odds_1_2-baseline", "odds_1_8-reject"]
    entry = full["configs"]["odds_1_2-baseline"]
    assert entry["config"] == {"set": "odds_1_2", "variant": "accept", "gamma": 1.0, "steps": 4}
    assert entry["metrics"]["mean_p_accept"] == 0.4 and entry["p_accept"] == [0.25, 0.25]
    assert entry["sample_generations"] == [f"g{i}" for i in range(8)]


def test_evaluate_configs_needs_trained_model_dirs(tmp_path):
    configs = {"odds_1_2-baseline": WeightedConfig("odds_1_2")}
    with pytest.raises(InputError, match="no config.json"):
        evaluate_configs(tmp_path, configs, {"odds_1_2": 1 / 3}, 4.0, [])
    with pytest.raises(InputError, match="weighted.configs is empty"):
        evaluate_configs(tmp_path, {}, {"odds_1_2": 1 / 3}, 4.0, [])


# ---- 95% bootstrap intervals over test items ------------------------------------------------------


def test_vectorised_f1_matches_sklearn_row_by_row():
    from sklearn.metrics import f1_score

    from lmlab.weighted.evaluation import _f1

    rng = np.random.default_rng(0)
    y_true = (rng.random((50, 12)) < 0.5).astype(float)
    y_pred = (rng.random((50, 12)) < 0.4).astype(float)
    y_true[0], y_pred[0] = 0.0, 0.0  # no positive at all: sklearn's zero_division=0
    y_true[1], y_pred[1] = 1.0, 0.0  # no predicted positive
    expected = [f1_score(t, p, pos_label=1, zero_division=0) for t, p in zip(y_true, y_pred)]
    assert _f1(y_true, y_pred) == pytest.approx(expected)


def test_decision_intervals_contain_the_metrics():
    rng = np.random.default_rng(1)
    y_true = np.repeat([1, 0], 60)
    y_pred = np.where(rng.random(120) < 0.8, y_true, 1 - y_true)
    m = classification_metrics(y_true, y_pred)
    ci = decision_intervals(y_true, y_pred)
    assert set(ci) == set(CI_KEYS) == {f"{k}_ci_{s}" for k in ("accuracy", "f1", "acceptance_rate")
                                       for s in ("low", "high")}
    for key in CI_METRICS:
        assert 0.0 <= ci[f"{key}_ci_low"] < m[key] < ci[f"{key}_ci_high"] <= 1.0
    assert ci == decision_intervals(y_true, y_pred)  # fixed seed: reproducible
    # F1 is recomputed per resample: its interval is the percentile interval of resampled F1 itself
    from lmlab.statistics import bootstrap_ci
    from lmlab.weighted.evaluation import _f1

    direct = bootstrap_ci([y_true, y_pred], _f1, paired=True, seed=0)
    assert direct.estimate == pytest.approx(m["f1"])
    assert (ci["f1_ci_low"], ci["f1_ci_high"]) == pytest.approx((direct.low, direct.high))


def test_decision_intervals_known_cases():
    perfect = decision_intervals([1, 0] * 20, [1, 0] * 20)
    assert (perfect["accuracy_ci_low"], perfect["accuracy_ci_high"]) == (1.0, 1.0)
    assert (perfect["f1_ci_low"], perfect["f1_ci_high"]) == (1.0, 1.0)
    half = decision_intervals([1, 0] * 100, [1] * 200)  # accept everything: accuracy 0.5, acceptance 1
    assert (half["acceptance_rate_ci_low"], half["acceptance_rate_ci_high"]) == (1.0, 1.0)
    below, above = 0.5 - half["accuracy_ci_low"], half["accuracy_ci_high"] - 0.5
    assert 0.0 <= half["accuracy_ci_low"] and half["accuracy_ci_high"] <= 1.0
    assert below > 0.04 and above > 0.04 and abs(below - above) < 0.02
    empty = decision_intervals([], [])
    assert all(np.isnan(v) for v in empty.values())
