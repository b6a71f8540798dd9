"""Records and summary of the comparison on hand-made predictions (no models involved)."""

from __future__ import annotations

import numpy as np
import pytest
from rouge_score import rouge_scorer

from lmlab.ensemble.labels import format_output
from lmlab.ensemble.report import (
    accuracy_intervals,
    build_records,
    contract_metrics,
    plot_agreement_matrix,
    plot_class_accuracy,
    rouge_means,
    summarize,
)
from lmlab.statistics import bootstrap_ci


def _row(label, instruction="Find gadgets."):
    return {"instruction": instruction, "instruction_original": instruction.replace("Find", "Find CONTROL-FLOW"),
            "input": "x", "output": format_output(label, "Section 1.1 Jumps", "JMP skips rungs."),
            "gold_class": label}


GOLD = [_row("CONTROL_FLOW"), _row("READ_WRITE"), _row("CONTROL_FLOW"), _row("IO_SIDE_EFFECT")]
CF = format_output("CONTROL_FLOW", "Section 1.1 Jumps", "JMP skips rungs.")
RW = format_output("READ_WRITE", "Section 2.2 Memory", "MOV copies words.")


def test_two_models_records_and_summary():
    preds = {"s2s": [CF, RW, CF, "garbage"], "gpt": [CF, CF, "gadget_type: Control flow; oops", RW]}
    records = build_records(GOLD, preds, priority=["gpt", "s2s"])
    assert [r["full_agreement"] for r in records] == [True, False, True, False]
    assert records[1]["vote"]["status"] == "tie" and records[1]["vote"]["tiebreak_label"] == "CONTROL_FLOW"
    assert records[3]["vote"]["status"] == "plurality"  # one valid vote of two
    assert records[2]["predictions"]["gpt"]["format_lenient"] is False
    s = summarize(records, ["s2s", "gpt"])
    assert s["n"] == 4 and s["agreement_rate"] == 0.5
    assert s["accuracy"] == {"s2s": 0.75, "gpt": 0.5}
    assert s["majority"]["accuracy"] == 0.5 and s["majority"]["tie_rate"] == 0.25
    assert s["majority"]["accuracy_with_tiebreak"] == 0.5  # the tie-break picked gpt's wrong label
    assert s["agreed"] == {"n": 2, "accuracy": 1.0}
    assert s["disagreed"]["accuracy"] == {"s2s": 0.5, "gpt": 0.0}
    assert s["format_accuracy"]["s2s"] == 0.75 and s["format_accuracy_strict"]["gpt"] == 0.75
    assert "fleiss_kappa" not in s
    assert s["copy_baseline"]["accuracy_original_instruction"] == 0.5  # the leak names CONTROL-FLOW
    assert s["copy_baseline"]["accuracy_prompt_instruction"] == 0.0
    metrics = contract_metrics(s)
    for key in ("agreement_rate", "format_accuracy", "rouge1", "rougeL", "n"):
        assert key in metrics
    assert set(metrics["rouge1"]) == {"s2s", "gpt"}


def test_three_models_fleiss():
    preds = {"a": [CF, RW, CF, RW], "b": [CF, RW, RW, RW], "c": [CF, CF, CF, "x"]}
    s = summarize(build_records(GOLD, preds, priority=[]), ["a", "b", "c"])
    assert "fleiss_kappa" in s and -1 <= s["fleiss_kappa"] <= 1
    assert len(s["pairwise"]) == 3
    assert "fleiss_kappa" in contract_metrics(s)


def test_rouge_target_first():
    gold, pred = "the cat sat on the mat", "the cat"
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    expected = scorer.score(target=gold, prediction=pred)["rouge1"]
    assert expected.precision == 1.0 and expected.recall < 1.0
    assert rouge_means([gold], [pred])["rouge1"] == pytest.approx(expected.fmeasure)
    assert rouge_means([gold], [""])["rouge1"] == 0.0


def test_plots_are_written(tmp_path):
    plot_agreement_matrix({"a": ["A", "B", None], "b": ["A", "C", None]}, tmp_path / "m.png")
    plot_class_accuracy({"a": {"READ_WRITE": 0.5}, "b": {"READ_WRITE": 1.0}}, tmp_path / "c.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "c.png").stat().st_size > 1000


# ---- 95% bootstrap intervals over test items ------------------------------------------------------


def _records(correct_by_model, agreed=None, majority=None):
    """Minimal records for the interval code: per-model correctness, agreement and majority flags."""
    models = list(correct_by_model)
    n = len(correct_by_model[models[0]])
    agreed = agreed if agreed is not None else [True] * n
    majority = majority if majority is not None else correct_by_model[models[0]]
    return [{"predictions": {m: {"correct": bool(correct_by_model[m][i])} for m in models},
             "full_agreement": bool(agreed[i]), "majority_correct": bool(majority[i])} for i in range(n)]


def test_contract_metrics_carry_intervals_that_contain_the_estimates():
    preds = {"s2s": [CF, RW, CF, "garbage"], "gpt": [CF, CF, "gadget_type: Control flow; oops", RW]}
    records = build_records(GOLD, preds, priority=["gpt", "s2s"])
    s = summarize(records, ["s2s", "gpt"])
    assert summarize(records, ["s2s", "gpt"], seed=5)["intervals"] == accuracy_intervals(records, ["s2s", "gpt"], seed=5)
    m = contract_metrics(s)
    assert set(m["accuracy_ci"]) == {"s2s", "gpt"}
    for model in ("s2s", "gpt"):
        ci = m["accuracy_ci"][model]
        assert set(ci) == {"low", "high"} and 0.0 <= ci["low"] <= m["accuracy"][model] <= ci["high"] <= 1.0
    assert 0.0 <= m["agreement_rate_ci_low"] <= m["agreement_rate"] <= m["agreement_rate_ci_high"] <= 1.0
    assert 0.0 <= m["majority_accuracy_ci_low"] <= m["majority_accuracy"] <= m["majority_accuracy_ci_high"] <= 1.0
    # the pair key is the sorted one of the pairwise metrics (cohen_kappa), difference = acc(a) - acc(b)
    assert set(m["accuracy_difference"]) == set(m["cohen_kappa"]) == {"gpt__s2s"}
    assert m["accuracy_difference"]["gpt__s2s"] == pytest.approx(0.5 - 0.75)
    diff_ci = m["accuracy_difference_ci"]["gpt__s2s"]
    assert -1.0 <= diff_ci["low"] <= m["accuracy_difference"]["gpt__s2s"] <= diff_ci["high"] <= 1.0
    # the full records in the report keep estimate, n and resamples too
    assert s["intervals"]["accuracy"]["gpt"]["n"] == 4 and s["intervals"]["accuracy"]["gpt"]["n_resamples"] == 2000


def test_all_correct_items_give_a_degenerate_interval():
    iv = accuracy_intervals(_records({"a": [1] * 30, "b": [1] * 30}), ["a", "b"])
    assert (iv["accuracy"]["a"]["low"], iv["accuracy"]["a"]["high"]) == (1.0, 1.0)
    assert (iv["agreement_rate"]["low"], iv["agreement_rate"]["high"]) == (1.0, 1.0)
    assert (iv["accuracy_difference"]["a__b"]["low"], iv["accuracy_difference"]["a__b"]["high"]) == (0.0, 0.0)
    none = accuracy_intervals(_records({"a": [0] * 30}), ["a"])["accuracy"]["a"]
    assert (none["low"], none["high"]) == (0.0, 0.0)


def test_half_correct_interval_is_symmetric_and_about_the_normal_width():
    n = 200
    iv = accuracy_intervals(_records({"a": [i % 2 for i in range(n)]}), ["a"])["accuracy"]["a"]
    assert iv["estimate"] == 0.5 and 0.0 <= iv["low"] < 0.5 < iv["high"] <= 1.0
    below, above = 0.5 - iv["low"], iv["high"] - 0.5
    assert abs(below - above) < 0.02
    half_width = 1.96 * np.sqrt(0.25 / n)  # Wald: 0.069
    assert (below + above) / 2 == pytest.approx(half_width, rel=0.15)


def test_accuracy_difference_is_paired_over_items():
    rng = np.random.default_rng(3)
    a = (rng.random(300) < 0.7).astype(int)
    b = a.copy()
    flip = rng.choice(300, 15, replace=False)  # b differs from a on 5% of the items: strongly correlated
    b[flip] = 1 - b[flip]
    iv = accuracy_intervals(_records({"a": a, "b": b}), ["b", "a"], seed=0)
    diff = iv["accuracy_difference"]["a__b"]  # sorted order whatever the model order
    assert diff["estimate"] == pytest.approx(a.mean() - b.mean())
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    unpaired = bootstrap_ci([a, b], lambda x, y: x.mean(-1) - y.mean(-1), paired=False, seed=0)
    paired_width, unpaired_width = diff["high"] - diff["low"], unpaired.high - unpaired.low
    assert paired_width < 0.5 * unpaired_width
    # the same resamples as a direct paired bootstrap of the two correctness vectors
    direct = bootstrap_ci([a, b], lambda x, y: x.mean(-1) - y.mean(-1), paired=True, seed=0)
    assert (diff["low"], diff["high"]) == pytest.approx((direct.low, direct.high))


def test_intervals_follow_the_seed_and_cover_every_pair():
    correct = {m: [(i * k) % 5 < 2 + k for i in range(40)] for k, m in enumerate(("c", "a", "b"))}
    records = _records(correct, agreed=[i % 4 == 0 for i in range(40)])
    first = accuracy_intervals(records, list(correct), seed=7)
    assert first == accuracy_intervals(records, list(correct), seed=7)
    assert set(first["accuracy_difference"]) == {"a__b", "a__c", "b__c"}
    for pair, ci in first["accuracy_difference"].items():
        a, b = pair.split("__")
        direct = bootstrap_ci([np.asarray(correct[a], float), np.asarray(correct[b], float)],
                              lambda x, y: x.mean(-1) - y.mean(-1), paired=True, seed=7)
        assert (ci["estimate"], ci["low"], ci["high"]) == pytest.approx((direct.estimate, direct.low, direct.high))
