"""Stage smoke test on tiny models: ens_train (seq2seq + causal, a few steps) then ens_compare."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_params


def _model(base: str) -> dict:
    return {"model": {"name": base, "n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64,
                      "max_positions": 256},
            "max_source_length": 96, "max_target_length": 32, "cpu_threads": 1,
            "training": {"max_steps": 3, "batch_size": 4, "eval_batch_size": 8, "eval_steps": 3,
                         "save_steps": 3, "logging_steps": 1}}


def _params(path, jsonl):
    """The ensemble section with three tiny models (two causal ones share a base) and no judge."""
    models = {"s2s": _model("tiny-t5"), "gpt": _model("tiny-gpt2"), "gpt_b": _model("tiny-gpt2")}
    overrides = {"seed": 0, "ensemble.sample.n_rows": 64, "ensemble.data.jsonl": str(jsonl),
                 "ensemble.tokenizer.vocab_size": 400,
                 "ensemble.tokenizer.text_fields": ["instruction", "input", "output"],
                 "ensemble.tokenizer_model.name": "tiny-gpt2", "ensemble.tokenizer_model.max_positions": 256,
                 "ensemble.models": models,
                 "ensemble.compare.max_new_tokens": 12, "ensemble.compare.batch_size": 8,
                 "ensemble.compare.cpu_threads": 1, "ensemble.compare.priority": ["s2s"],
                 "ensemble.judge": "none"}
    return write_params(path, overrides, sections=("seed", "ensemble"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from stages.ens_sample import main as sample_main
    from stages.ens_split import main as split_main
    from stages.tokenizer import main as tok_main

    root = tmp_path_factory.mktemp("ens")
    jsonl = root / "gadgets.jsonl"
    params = _params(root / "params.yaml", jsonl)
    p = ["--params", str(params)]
    assert sample_main([*p, "--out", str(jsonl)]) == 0
    assert split_main([*p, "--out-dir", str(root / "split")]) == 0
    assert tok_main([*p, "--section", "ensemble", "--model-key", "tokenizer_model",
                     "--corpus", str(root / "split/train.jsonl"), "--out", str(root / "tok")]) == 0
    return root, params


@pytest.mark.slow
def test_train_and_compare_three_tiny_models(tiny_run):
    from stages.ens_compare import main as compare_main
    from stages.ens_train import main as train_main

    root, params = tiny_run
    for name in ("s2s", "gpt", "gpt_b"):
        rc = train_main(["--params", str(params), "--model", name, "--train", str(root / "split/train.jsonl"),
                         "--valid", str(root / "split/valid.jsonl"), "--tokenizer", str(root / "tok"),
                         "--out", str(root / "models" / name), "--checkpoints", str(root / "ckpt" / name),
                         "--live", str(root / "live" / name)])
        assert rc == 0
        info = json.loads((root / "models" / name / "ensemble_model.json").read_text())
        assert info["kind"] == ("seq2seq" if name == "s2s" else "causal") and info["global_step"] == 3
        assert (root / "live" / name / "plots" / "metrics").is_dir()
    args = ["--params", str(params), "--test", str(root / "split/test.jsonl"), "--train", str(root / "split/train.jsonl"),
            "--models-dir", str(root / "models"), "--report", str(root / "report.json"),
            "--metrics", str(root / "metrics.json"), "--plots-dir", str(root / "plots"),
            "--examples-csv", str(root / "examples.csv"), "--writeup", str(root / "writeup.json"),
            "--plot-data", str(root / "plot_data")]
    assert compare_main(args) == 0
    # DVC plot data: one confusion row per test item and model, gold class first
    report = json.loads((root / "report.json").read_text())
    for name in ("s2s", "gpt", "gpt_b"):
        rows = json.loads((root / "plot_data" / "confusion" / f"{name}.json").read_text())
        assert [r["actual"] for r in rows] == [str(r["gold_class"]) for r in report["records"]]
    metrics = json.loads((root / "metrics.json").read_text())
    assert {"agreement_rate", "format_accuracy", "rouge1", "rougeL", "n", "fleiss_kappa"} <= set(metrics)
    assert set(metrics["format_accuracy"]) == {"s2s", "gpt", "gpt_b"}
    # a 95% bootstrap interval next to every headline rate, and the paired difference of every pair
    assert set(metrics["accuracy_ci"]) == {"s2s", "gpt", "gpt_b"}
    for model, ci in metrics["accuracy_ci"].items():
        assert ci["low"] <= metrics["accuracy"][model] <= ci["high"]
    for key in ("agreement_rate", "majority_accuracy"):
        assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"]
    assert set(metrics["accuracy_difference"]) == set(metrics["accuracy_difference_ci"]) == {
        "gpt__gpt_b", "gpt__s2s", "gpt_b__s2s"}
    report = json.loads((root / "report.json").read_text())
    assert len(report["records"]) == metrics["n"] and report["summary"]["priority"][0] == "s2s"
    assert (root / "plots" / "ensemble_agreement.png").exists()
    # the write-up's own analysis: per example in the report and the CSV, three numbers in the metrics
    assert {"unique_types", "normalized_types", "majority_type", "disagreement_rate"} <= set(report["records"][0]["writeup"])
    assert metrics["writeup_disagreement_rate"] == 1 - metrics["writeup_full_agreement_rate"]
    assert len((root / "examples.csv").read_text().splitlines()) == metrics["n"] + 1
    writeup = json.loads((root / "writeup.json").read_text())
    assert writeup["family"] == "ensemble" and writeup["writeup"] == "002"
    rows = {r["quantity"]: r for r in writeup["rows"]}
    assert rows["examples compared (write-up: validation rows)"]["lmlab"] == metrics["n"]
    assert rows["format accuracy, flan-t5-small (lmlab: s2s)"]["lmlab"] == metrics["format_accuracy"]["s2s"]
    assert rows["format accuracy, distilgpt2 (lmlab: gpt)"]["lmlab"] == metrics["format_accuracy"]["gpt"]

    # A model listed in params without a trained directory: clear error, no partial outputs.
    for f in ("report.json", "metrics.json", "examples.csv", "writeup.json"):
        (root / f).unlink()
    (root / "models" / "gpt_b" / "ensemble_model.json").unlink()
    assert compare_main(args) == 2
    assert not (root / "report.json").exists() and not (root / "metrics.json").exists()
    assert not (root / "writeup.json").exists()
