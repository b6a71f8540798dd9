"""lmlab.ilm.writeup and stage ilm_writeup: the write-ups' figures beside lmlab's, from lmlab's own outputs."""

from __future__ import annotations

import json

import pytest

from lmlab.ilm.writeup import EMBEDDED_CSV, ilm_writeup_rows
from lmlab.writeup import NOT_AT_EMBEDDED, read_rows
from tests.conftest import write_params

LEVELS = ("A1", "A2", "B1", "B2", "C1", "all")


def _inputs(gain_low: float = 0.1, final_loss: float = 3.0):
    """Outputs of the ILM stages, shaped as the stages write them (values arbitrary but distinct)."""
    mask_stats = {level: {"train": {"mask_rate_chars": 0.12 + 0.001 * i, "examples_per_document": 16.0,
                                    "examples": 1000 * (i + 1)},
                          "valid": {"examples_per_document": 4.0}} for i, level in enumerate(LEVELS)}
    counts = {"A1": 470, "A2": 300, "B1": 160, "B2": 56, "C1": 14}
    split = {"counts": {**{lvl: {"total": n, "train": int(0.8 * n)} for lvl, n in counts.items()},
                        "all": {"total": 1000, "train": 800}}}
    step0 = {"context_loss": 7.6, "context_count": 900.0, "infill_loss": 7.7, "infill_count": 200.0,
             "infill_textonly_loss": 7.65, "infill_textonly_count": 150.0}
    summaries = {level: {"global_step": 250, "eval_examples": 128, "eval_step0": step0,
                         "eval_best": {**step0, "infill_loss": final_loss}} for level in LEVELS}
    model_params = {level: {"train": {"trainer": {"max_steps": 250, "epochs": None}}} for level in LEVELS}
    model_params["C1"]["train"]["trainer"]["epochs"] = 1.0
    ppl = {"ppl": {m: {lvl: 10.0 + i + j for j, lvl in enumerate(LEVELS)} for i, m in enumerate(LEVELS)},
           "specialization_gain": {lvl: 0.3 for lvl in LEVELS[:5]},
           "specialization_gain_ci": {lvl: {"low": gain_low, "high": 0.5} for lvl in LEVELS[:5]}}
    infill = {"all": {"all": {"top1_accuracy": 0.05, "unigram_recall": 0.3, "unigram_f1": 0.25,
                              "bigram_recall": 0.1, "bigram_f1": 0.08, "n": 150}}}
    return dict(mask_stats=mask_stats, split=split, summaries=summaries, model_params=model_params,
                ppl_metrics=ppl, infill=infill)


def _by_name(rows):
    return {row.quantity: row for row in rows}


def test_rows_carry_lmlabs_measurements_with_their_source():
    rows = _by_name(ilm_writeup_rows(**_inputs(), base_model="tiny-gpt2", real_data=False))
    assert rows["mask rate, train (% of characters)"].lmlab == pytest.approx(12.5)  # level all, in %
    assert rows["masked examples per train document"].lmlab == 16.0
    assert rows["documents at level A1 (%)"].lmlab == pytest.approx(47.0)
    assert rows["train share of documents (%)"].lmlab == pytest.approx(80.0)
    assert rows["step-0 eval context loss (general model)"].lmlab == 7.6
    assert rows["step-0 eval infill_textonly count (general model)"].lmlab == 150.0
    assert rows["test perplexity, general model on C1"].lmlab == 10.0 + 5 + 4  # ppl.all.C1
    assert rows["infill unigram_f1, general model, all levels"].lmlab == 0.25
    assert "1.0 epoch(s) of examples" in rows["training steps, level C1"].note and "max_steps 250" in rows["training steps, level A1"].note
    assert all(row.source for row in rows.values())


def test_corpus_sizes_need_the_real_data():
    embedded = _by_name(ilm_writeup_rows(**_inputs(), base_model="tiny-gpt2", real_data=False))
    real = _by_name(ilm_writeup_rows(**_inputs(), base_model="gpt2", real_data=True))
    for name in ("EFCAMDAT documents (all levels)", "training examples (all levels)"):
        assert embedded[name].lmlab == NOT_AT_EMBEDDED
    assert real["EFCAMDAT documents (all levels)"].lmlab == 1000
    assert real["training examples (all levels)"].lmlab == 6000
    assert "compare the direction" in embedded["step-0 eval infill loss (general model)"].note
    assert "as the write-up" in real["step-0 eval infill loss (general model)"].note


def test_success_criteria_follow_the_measurements():
    good = _by_name(ilm_writeup_rows(**_inputs(gain_low=0.1, final_loss=3.0), base_model="tiny-gpt2", real_data=False))
    bad = _by_name(ilm_writeup_rows(**_inputs(gain_low=-0.1, final_loss=9.0), base_model="tiny-gpt2", real_data=False))
    assert good["eval infill loss after training, level A1"].passed is True
    assert bad["eval infill loss after training, level A1"].passed is False
    assert good["specialisation gain, C1 (%)"].passed is True and good["specialisation gain, C1 (%)"].lmlab == 30.0
    assert bad["specialisation gain, C1 (%)"].passed is False  # positive estimate, CI reaching below 0
    assert all(row.passed is None for name, row in good.items() if "perplexity" in name or "step-0" in name)


def test_missing_figures_stay_missing():
    inputs = _inputs()
    inputs["summaries"]["all"] = {"global_step": 3}  # a model trained before the step-0 eval existed
    inputs["infill"] = {}
    rows = _by_name(ilm_writeup_rows(**inputs, base_model="tiny-gpt2", real_data=False))
    assert rows["step-0 eval context loss (general model)"].lmlab is None
    assert rows["eval infill loss after training, level all"].passed is None
    assert rows["infill top1_accuracy, general model, all levels"].lmlab is None


def test_stage_writes_the_rows_and_reads_only_its_params(tmp_path, caplog):
    from stages.ilm_writeup import main

    inputs = _inputs()
    args = []
    for level in LEVELS:
        (tmp_path / "stats").mkdir(exist_ok=True)
        (tmp_path / "stats" / f"{level}.json").write_text(json.dumps(inputs["mask_stats"][level]))
        model = tmp_path / "models" / level
        model.mkdir(parents=True)
        (model / "training_summary.json").write_text(json.dumps(inputs["summaries"][level]))
        (model / "params.json").write_text(json.dumps(inputs["model_params"][level]))
        args += ["--mask-stats", f"{level}={tmp_path / 'stats' / level}.json", "--model", f"{level}={model}"]
    for name in ("split", "ppl_metrics", "infill"):
        (tmp_path / f"{name}.json").write_text(json.dumps(inputs[name]))
    params = write_params(tmp_path / "params.yaml", {}, sections=("ilm.model.name", "ilm.data.csv"))
    out = tmp_path / "writeup" / "ilm.json"
    common = [*args, "--split", str(tmp_path / "split.json"), "--ppl", str(tmp_path / "ppl_metrics.json"),
              "--infill", str(tmp_path / "infill.json"), "--out", str(out)]
    assert main(["--params", str(params), *common]) == 0
    payload = json.loads(out.read_text())
    rows = _by_name(read_rows(payload))
    assert payload["family"] == "ilm" and rows["EFCAMDAT documents (all levels)"].lmlab == NOT_AT_EMBEDDED
    assert EMBEDDED_CSV in params.read_text()
    # a broken or missing input is an error naming the file (and line), and leaves no output
    (tmp_path / "ppl_metrics.json").write_text('{"ppl": {"A1": 3.2,, }}')
    assert main(["--params", str(params), *common]) == 2
    assert not out.exists()
    assert "ppl_metrics.json:1:" in caplog.text
    (tmp_path / "ppl_metrics.json").write_text(json.dumps(inputs["ppl_metrics"]))
    (tmp_path / "infill.json").unlink()
    assert main(["--params", str(params), *common]) == 2
    assert not out.exists()
