"""Records and summary of the comparison on hand-made predictions (no models involved)."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from lmlab.ensemble.labels import format_output
from lmlab.ensemble.report import (
    build_records,
    contract_metrics,
    plot_agreement_matrix,
    plot_class_accuracy,
    rouge_means,
    summarize,
)


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
