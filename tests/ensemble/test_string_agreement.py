"""The write-up's normalised-string agreement, per example and by excerpt length (no models involved)."""

from __future__ import annotations

import csv
import math

import pytest

from lmlab.ensemble.labels import format_output
from lmlab.ensemble.report import build_records, contract_metrics, summarize
from lmlab.ensemble.string_agreement import (
    analyze_example,
    disagreement_by_length,
    example_table,
    write_example_table,
    writeup_normalize,
)


def test_the_writeups_worked_example_0():
    """Step 6's example: FLAN-T5 'Command enable logic' vs DistilGPT2 'Control-Flow gadget'."""
    a = analyze_example({"flan-t5-small": "Command enable logic", "distilgpt2": "Control-Flow gadget"})
    assert a["full_agreement"] is False
    assert a["unique_types"] == ["Command enable logic", "Control-Flow gadget"]
    # the report's own normalized_types, "and" removed inside "command" included
    assert a["normalized_types"] == {"flan-t5-small": "commenablelogic", "distilgpt2": "controlflow"}
    assert a["unique_normalized_types"] == ["commenablelogic", "controlflow"]
    # "Majority type: Command enable logic (1/2)": the tie goes to the first model
    assert (a["majority_type"], a["majority_count"]) == ("commenablelogic", 1)
    assert a["majority_type_original"] == "Command enable logic"
    assert a["disagreement_rate"] == 1.0


@pytest.mark.parametrize(("a", "b", "expected"), [
    ("ReadWrite", "READWRITE", "readwrite"),                      # capitalisation
    ("Control-Flow", "ControlFlow", "controlflow"),               # hyphens
    ("IO and Side-Effect", "IO and SIDE-EFFECT", "iosideeffect"),  # spacing, "and"
])
def test_the_writeups_normalisation_cases_agree(a, b, expected):
    result = analyze_example({"m1": a, "m2": b})
    assert result["full_agreement"] and result["normalized_types"] == {"m1": expected, "m2": expected}
    assert result["unique_types"] == [a, b] and result["disagreement_rate"] == 0.0


def test_punctuation_reading_is_a_parameter():
    """The write-up removes "punctuation"; its script only whitespace, -, _ and /."""
    assert writeup_normalize("Read/Write gadget.") == "readwrite"
    assert writeup_normalize("Read/Write gadget.", "upstream") == "readwrite."
    assert analyze_example({"a": "Timing (sync)", "b": "timing sync"})["full_agreement"]
    assert not analyze_example({"a": "Timing (sync)", "b": "timing sync"}, "upstream")["full_agreement"]
    with pytest.raises(ValueError):
        writeup_normalize("x", "fuzzy")


def test_missing_types_compete_but_never_agree():
    both = analyze_example({"a": None, "b": ""})
    assert not both["full_agreement"] and both["majority_type"] == "" and both["majority_count"] == 2
    assert both["disagreement_rate"] == 1.0
    one = analyze_example({"a": None, "b": "RW"})
    assert one["gadget_types"] == {"a": "", "b": "RW"} and one["disagreement_rate"] == 1.0


def test_three_models_pairwise_disagreement_and_majority():
    a = analyze_example({"x": "Timing gadget", "y": "Read/Write gadget", "z": "READ-WRITE gadgets"})
    # "gadgets" -> "s" (the script's replace order): z does not match y
    assert a["normalized_types"]["z"] == "readwrites"
    assert a["disagreement_rate"] == 1.0
    b = analyze_example({"x": "Timing gadget", "y": "Read/Write gadget", "z": "read write gadget"})
    assert (b["majority_type"], b["majority_count"]) == ("readwrite", 2)
    assert b["disagreement_rate"] == pytest.approx(2 / 3) and not b["full_agreement"]


def test_disagreement_by_length_bins_and_correlation():
    lengths = [5, 6, 7, 8, 20, 21, 22, 23, 40, 41, 42, 43]
    disagree = [0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1]
    result = disagreement_by_length(lengths, disagree, [0] * 12, n_bins=3)
    assert [b["n"] for b in result["bins"]] == [4, 4, 4]
    assert [b["disagreement_rate"] for b in result["bins"]] == [0.0, 0.5, 1.0]
    assert [(b["min_words"], b["max_words"]) for b in result["bins"]] == [(5, 8), (20, 23), (40, 43)]
    assert result["spearman"] > 0.7
    assert math.isnan(result["spearman_canonical"])  # constant: undefined, not 0
    flipped = disagreement_by_length(lengths, [1 - d for d in disagree], [0] * 12, n_bins=3)
    assert flipped["spearman"] == pytest.approx(-result["spearman"])
    # ties never straddle a cut: all equal lengths make one bin
    assert len(disagreement_by_length([9] * 6, [0, 1] * 3, [0] * 6, n_bins=3)["bins"]) == 1


def _gold(label, excerpt):
    return {"instruction": "Find gadgets.", "input": excerpt, "gold_class": label,
            "output": format_output(label, "Section 1.1", "JMP skips rungs.")}


def test_records_summary_metrics_and_csv(tmp_path):
    gold = [_gold("CONTROL_FLOW", "a b"), _gold("READ_WRITE", "a b c d e f"), _gold("CONTROL_FLOW", "a b c"),
            _gold("IO_SIDE_EFFECT", "a b c d e f g h")]
    cf, rw = format_output("CONTROL_FLOW", "L", "E"), format_output("READ_WRITE", "L", "E")
    preds = {
        "s2s": [cf, rw, "gadget_type: Control flow gadget; location: L; explanation: E", rw],
        # "Read-write gadgets" is RW for lmlab, but "readwrites" for the write-up's string match
        "gpt": [cf, "gadget_type: Read-write gadgets; location: L; explanation: E", "gadget_type: Control-Flow", cf],
    }
    records = build_records(gold, preds, priority=[])
    assert [r["writeup"]["full_agreement"] for r in records] == [True, False, True, False]
    assert [r["full_agreement"] for r in records] == [True, True, True, False]
    assert records[1]["excerpt_length"] == {"words": 6, "chars": 11}
    s = summarize(records, ["s2s", "gpt"])
    w = s["writeup"]
    assert (w["total_examples"], w["full_agreements"]) == (4, 2)
    assert w["full_agreement_rate"] == 0.5 and w["disagreement_rate"] == 0.5
    assert w["full_agreement_rate_canonical"] == s["agreement_rate"] == 0.75
    # with two models the mean per-example rate is the write-up's summary rate
    assert sum(r["writeup"]["disagreement_rate"] for r in records) / 4 == w["disagreement_rate"]
    assert w["model_format_accuracy"] == {"s2s": 1.0, "gpt": 0.75} == s["format_accuracy"]
    assert w["mean_unique_normalized_types"] == 1.5
    metrics = contract_metrics(s)
    assert metrics["writeup_full_agreement_rate"] == 0.5 and metrics["writeup_disagreement_rate"] == 0.5
    assert "disagreement_length_spearman" in metrics and metrics["disagreement_length_spearman"] > 0
    assert not any(isinstance(v, (dict, list)) for k, v in metrics.items() if k.startswith("writeup_"))

    table = example_table(records, ["s2s", "gpt"])
    assert table[1]["gpt.normalized_type"] == "readwrites" and table[1]["gpt.canonical_type"] == "READ_WRITE"
    write_example_table(tmp_path / "examples.csv", records, ["s2s", "gpt"])
    with (tmp_path / "examples.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[1]["full_agreement"] == "0" and rows[1]["full_agreement_canonical"] == "1"
    assert rows[0]["unique_types"] == "Control-Flow gadget"


def test_a_constant_disagreement_leaves_the_correlation_out_of_the_metrics():
    cf = format_output("CONTROL_FLOW", "L", "E")
    gold = [_gold("CONTROL_FLOW", "a " * n) for n in (1, 2, 3, 4)]
    s = summarize(build_records(gold, {"a": [cf] * 4, "b": [cf] * 4}, priority=[]), ["a", "b"])
    assert s["writeup"]["disagreement_rate"] == 0.0
    assert "disagreement_length_spearman" not in contract_metrics(s)
