"""wl_train / wl_eval stage smoke: tiny models end to end in-process, gamma keys, bad gamma."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.weighted.helpers import tiny_params

CONFIGS = {"baseline": {"fraction": "frac_1_2", "variant": "accept", "gamma_key": "weighted.baseline_gamma"},
           "frac_1_8-reject": {"fraction": "frac_1_8", "variant": "reject", "gamma_key": "gamma"}}


def _prepare(tmp_path, **overrides):
    from stages.wl_sample import main as sample
    from stages.wl_data import main as data
    from stages.tokenizer import main as tokenizer

    params = tiny_params(tmp_path, configs=CONFIGS, **overrides)
    pool, test = tmp_path / "pool.jsonl", tmp_path / "test.jsonl"
    assert sample(["--params", str(params), "--pool", str(pool), "--test", str(test)]) == 0
    assert data(["--params", str(params), "--pool", str(pool), "--test", str(test), "--out", str(tmp_path / "sets")]) == 0
    assert tokenizer(["--params", str(params), "--section", "weighted", "--corpus", str(pool),
                      "--out", str(tmp_path / "tok")]) == 0
    return params


def _train(tmp_path, params, config, fraction):
    from stages.wl_train import main

    return main(["--params", str(params), "--config", config, "--train", str(tmp_path / "sets" / f"{fraction}.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "models" / config),
                 "--checkpoints", str(tmp_path / "ck" / config), "--live", str(tmp_path / "live" / config)])


@pytest.mark.slow
def test_train_and_evaluate_stages(tmp_path):
    from stages.wl_eval import main as evaluate

    params = _prepare(tmp_path)
    assert _train(tmp_path, params, "baseline", "frac_1_2") == 0
    assert _train(tmp_path, params, "frac_1_8-reject", "frac_1_8") == 0
    gamma = yaml.safe_load(params.read_text())["gamma"]
    assert json.loads((tmp_path / "models/baseline/train_summary.json").read_text())["gamma"] == 1.0
    summary = json.loads((tmp_path / "models/frac_1_8-reject/train_summary.json").read_text())
    assert summary["gamma"] == gamma and summary["variant"] == "reject" and summary["n_accept"] == 6
    assert (tmp_path / "live/baseline/metrics.json").exists()
    vocab = json.loads((tmp_path / "models/baseline/decision_vocab.json").read_text())
    assert vocab["accept_ids"] and vocab["reject_ids"]
    out = tmp_path / "reports"
    code = evaluate(["--params", str(params), "--test", str(tmp_path / "test.jsonl"), "--models", str(tmp_path / "models"),
                     "--metrics", str(out / "weighted.json"), "--eval-json", str(out / "eval.json"),
                     "--plots", str(out / "plots")])
    assert code == 0
    metrics = json.loads((out / "weighted.json").read_text())
    assert metrics["gamma"] == gamma
    for config in CONFIGS:
        assert {"accuracy", "precision", "recall", "f1", "acceptance_rate"} <= set(metrics[config])
        assert 0.0 <= metrics[config]["acceptance_rate"] <= 1.0
    assert metrics["frac_1_8-reject"]["upweights_accept"] == 0
    assert (out / "plots/weighted_acceptance.png").exists()
    full = json.loads((out / "eval.json").read_text())
    assert len(full["configs"]["baseline"]["p_accept"]) == 40


@pytest.mark.parametrize("gamma", [0.0, -2.0, "four"])
def test_bad_gamma_fails_before_training(tmp_path, gamma):
    from stages.wl_train import main

    params = tiny_params(tmp_path, configs=CONFIGS)
    data = yaml.safe_load(params.read_text())
    data["gamma"] = gamma
    params.write_text(yaml.safe_dump(data))
    code = main(["--params", str(params), "--config", "frac_1_8-reject", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()


@pytest.mark.parametrize("override", [{"loss__scope": "tokens"}, {"configs__frac_1_8-reject__variant": "maybe"}])
def test_bad_scope_or_variant_fails_before_training(tmp_path, override):
    from stages.wl_train import main

    params = tiny_params(tmp_path, configs={k: dict(v) for k, v in CONFIGS.items()}, **override)
    code = main(["--params", str(params), "--config", "frac_1_8-reject", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()


def test_only_weighted_train_and_eval_read_gamma(repo_root):
    """Contract: `dvc exp run -S gamma=...` must invalidate nothing outside this family."""
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    readers = set()
    for name, stage in stages.items():
        body = stage.get("do", stage)
        params = [p for p in body.get("params", []) if isinstance(p, str)]
        if "gamma" in params or "${item.gamma_key}" in params or "${gamma}" in str(body.get("cmd", "")):
            readers.add(name)
    assert readers == {"wl_train", "wl_eval"}
    configs = yaml.safe_load((repo_root / "params.yaml").read_text())["weighted"]["configs"]
    assert configs["baseline"]["gamma_key"] != "gamma"
