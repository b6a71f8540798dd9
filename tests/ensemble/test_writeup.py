"""Write-up 002's numbers beside lmlab's: rows from a summary built on hand-made predictions."""

from __future__ import annotations

import json

from lmlab.ensemble.labels import format_output
from lmlab.ensemble.report import build_records, summarize
from lmlab.ensemble.writeup import FORMAT_ACCURACY, FULL_AGREEMENT_RATE, TRAIN_LOSS, WRITEUP, writeup_rows
from lmlab.writeup import read_rows, write_rows


def _summary(training):
    gold = [{"instruction": "Find gadgets.", "input": "w " * n, "gold_class": "CONTROL_FLOW",
             "output": format_output("CONTROL_FLOW", "L", "E")} for n in (3, 5, 9, 12)]
    gold[0]["instruction"] = "Identify weird machine CONTROL-FLOW gadgets."  # the class left in one prompt
    cf, rw = format_output("CONTROL_FLOW", "L", "E"), format_output("READ_WRITE", "L", "E")
    preds = {"t5": [cf, cf, cf, "garbled"], "gpt": [cf, rw, rw, rw], "gpt2": [cf, cf, rw, rw]}
    summary = summarize(build_records(gold, preds, priority=[]), list(preds))
    summary["training"] = training
    return summary


def _by_quantity(rows):
    return {row.quantity: row for row in rows}


def test_rows_pair_the_writeups_models_with_lmlab_models_by_kind(tmp_path):
    training = {"t5": {"kind": "seq2seq", "base": "tiny-t5", "train_loss": 2.5},
                "gpt": {"kind": "causal", "base": "tiny-gpt2", "train_loss": 1.25},
                "gpt2": {"kind": "causal", "base": "tiny-gpt2"}}
    rows = writeup_rows(_summary(training), split="writeup", subsample_n=100, n_train=90)
    by = _by_quantity(rows)
    assert by["training rows"].writeup == "90" and by["training rows"].lmlab == 90.0
    assert "validation (write-up split)" in by["training rows"].note and "first/sampled 100 rows" in by["training rows"].note
    assert by["examples compared (write-up: validation rows)"].lmlab == 4.0
    assert by["accuracy of copying the class named in the prompt"].lmlab == 0.25
    agree = by["full agreement rate (normalised strings)"]
    assert agree.writeup == f"{FULL_AGREEMENT_RATE:.0%}" and agree.lmlab == 0.25  # only row 0: three-way agreement
    assert "inside the write-up's expected 10%-30%" in agree.note
    assert by["disagreement rate (normalised strings)"].lmlab == 0.75
    # the first model of each kind stands for FLAN-T5-small / DistilGPT2; the criterion is > 80 %
    t5 = by["format accuracy, flan-t5-small (lmlab: t5)"]
    assert t5.writeup == f"{FORMAT_ACCURACY['seq2seq']:.0%}" and t5.lmlab == 0.75 and t5.passed is False
    gpt = by["format accuracy, distilgpt2 (lmlab: gpt)"]
    assert gpt.lmlab == 1.0 and gpt.passed is True
    assert by["final mean training loss, distilgpt2 (lmlab: gpt)"].writeup == f"{TRAIN_LOSS['causal']:.4f}"
    assert by["final mean training loss, distilgpt2 (lmlab: gpt)"].lmlab == 1.25
    rho = by["Spearman rho, excerpt words vs disagreement"]
    assert rho.lmlab is not None and rho.lmlab > 0 and "words:" in rho.note
    path = tmp_path / "writeup" / "ensemble.json"
    write_rows(path, "ensemble", WRITEUP, rows)
    assert read_rows(json.loads(path.read_text())) == rows


def test_a_missing_kind_and_an_unrecorded_loss_say_so():
    training = {"t5": {"kind": "seq2seq"}, "gpt": {"kind": "seq2seq"}, "gpt2": {"kind": "seq2seq"}}
    by = _by_quantity(writeup_rows(_summary(training), split="stratified", subsample_n=0, n_train=50))
    assert by["format accuracy, distilgpt2"].lmlab == "no causal model in ensemble.models"
    assert by["final mean training loss, flan-t5-small (lmlab: t5)"].lmlab == "not recorded"
    assert "stratified test split" in by["training rows"].note
