"""Decision metrics against hand-computed values; scoring and generation plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.weighted.data import DecisionExample
from lmlab.weighted.evaluation import classification_metrics, evaluate_decisions, score_decisions
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
