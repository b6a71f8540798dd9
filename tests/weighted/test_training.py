"""wl_train / wl_eval stage smoke: tiny models end to end in-process, gamma keys, bad gamma."""

from __future__ import annotations

import json

import pytest
import yaml

from lmlab.errors import InputError
from tests.conftest import write_params
from tests.weighted.helpers import row, tiny_params, write_jsonl

CONFIGS = {"odds_1_2-baseline": {"set": "odds_1_2", "variant": "accept", "gamma_key": "weighted.baseline_gamma"},
           "odds_1_8-reject": {"set": "odds_1_8", "variant": "reject", "gamma_key": "gamma"}}


def _prepare(tmp_path, **overrides):
    from stages.tokenizer import main as tokenizer
    from stages.wl_data import main as data
    from stages.wl_sample import main as sample

    params = tiny_params(tmp_path, configs=CONFIGS, **overrides)
    pool, test = tmp_path / "pool.jsonl", tmp_path / "test.jsonl"
    assert sample(["--params", str(params), "--pool", str(pool), "--test", str(test)]) == 0
    assert data(["--params", str(params), "--pool", str(pool), "--test", str(test), "--out", str(tmp_path / "sets")]) == 0
    assert tokenizer(["--params", str(params), "--section", "weighted", "--corpus", str(pool),
                      "--out", str(tmp_path / "tok")]) == 0
    return params


def _train(tmp_path, params, config, train_set):
    from stages.wl_train import main

    return main(["--params", str(params), "--config", config, "--train", str(tmp_path / "sets" / f"{train_set}.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "models" / config),
                 "--checkpoints", str(tmp_path / "ck" / config), "--live", str(tmp_path / "live" / config)])


@pytest.mark.slow
def test_train_and_evaluate_stages(tmp_path):
    from stages.wl_eval import main as evaluate

    params = _prepare(tmp_path)
    assert _train(tmp_path, params, "odds_1_2-baseline", "odds_1_2") == 0
    assert _train(tmp_path, params, "odds_1_8-reject", "odds_1_8") == 0
    gamma = yaml.safe_load(params.read_text())["gamma"]
    assert json.loads((tmp_path / "models/odds_1_2-baseline/train_summary.json").read_text())["gamma"] == 1.0
    summary = json.loads((tmp_path / "models/odds_1_8-reject/train_summary.json").read_text())
    assert summary["gamma"] == gamma and summary["variant"] == "reject" and summary["n_accept"] == 5  # odds 1:8 of 48 rows
    assert (tmp_path / "live/odds_1_2-baseline/metrics.json").exists()
    vocab = json.loads((tmp_path / "models/odds_1_2-baseline/decision_vocab.json").read_text())
    assert vocab["accept_ids"] and vocab["reject_ids"]
    out = tmp_path / "reports"
    code = evaluate(["--params", str(params), "--test", str(tmp_path / "test.jsonl"), "--models", str(tmp_path / "models"),
                     "--metrics", str(out / "weighted.json"), "--eval-json", str(out / "eval.json"),
                     "--plots", str(out / "plots"), "--sets-summary", str(tmp_path / "sets" / "summary.json"),
                     "--writeup", str(out / "writeup.json"), "--plot-data", str(out / "plot_data")])
    assert code == 0
    roc = json.loads((out / "plot_data/roc/odds_1_8-reject.json").read_text())["roc"]
    assert (roc[0]["fpr"], roc[-1]["tpr"]) == (0.0, 1.0)
    assert {p.name for p in (out / "plot_data/acceptance_vs_gamma").iterdir()} == {"baseline.json", "reject.json"}
    metrics = json.loads((out / "weighted.json").read_text())
    # no top-level gamma (it duplicated the param, issue 17): each config carries the weight it trained with
    assert "gamma" not in metrics and metrics["odds_1_8-reject"]["gamma"] == gamma
    for config in CONFIGS:
        assert {"accuracy", "precision", "recall", "f1", "acceptance_rate"} <= set(metrics[config])
        assert 0.0 <= metrics[config]["acceptance_rate"] <= 1.0
    assert metrics["odds_1_8-reject"]["upweights_accept"] == 0
    assert (out / "plots/weighted_acceptance.png").exists()
    full = json.loads((out / "eval.json").read_text())
    assert len(full["configs"]["odds_1_2-baseline"]["p_accept"]) == 40
    assert full["configs"]["odds_1_2-baseline"]["config"]["set"] == "odds_1_2"
    writeup = {r["quantity"]: r for r in json.loads((out / "writeup.json").read_text())["rows"]}
    share = writeup["training set 1:2 (accept:reject): accepted share, %"]
    assert share["lmlab"] == pytest.approx(100 / 3) and share["passed"] is True and share["writeup"] == "33 %"
    small = writeup["training set 1:8 (accept:reject): accepted share, %"]  # 5 of 48 rows: 10 %, not 11 %
    assert small["lmlab"] == pytest.approx(100 * 5 / 48) and small["passed"] is False
    assert writeup["test set: rows"]["lmlab"] == 40.0 and writeup["training runs in the grid"]["lmlab"] == 3.0
    accuracy = writeup["criterion 5: runs with accuracy > 60 %, %"]
    above = sum(metrics[c]["accuracy"] > 0.6 for c in CONFIGS)
    assert accuracy["lmlab"] == pytest.approx(100 * above / 2) and accuracy["passed"] is (above == 2)
    lowest = writeup["criterion 4: lowest predicted acceptance, %"]
    assert lowest["lmlab"] == pytest.approx(100 * min(metrics[c]["acceptance_rate"] for c in CONFIGS))
    assert writeup["criterion 3: (set, variant) groups monotone in gamma, %"]["passed"] is None  # one gamma per group


@pytest.mark.parametrize("gamma", [0.0, -2.0, "four"])
def test_bad_gamma_fails_before_training(tmp_path, gamma):
    from stages.wl_train import main

    params = tiny_params(tmp_path, configs=CONFIGS)
    write_params(params, {"gamma": gamma}, source=params)
    code = main(["--params", str(params), "--config", "odds_1_8-reject", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()


@pytest.mark.parametrize("override", [{"loss__scope": "tokens"}, {"configs__odds_1_8-reject__variant": "maybe"}])
def test_bad_scope_or_variant_fails_before_training(tmp_path, override):
    from stages.wl_train import main

    params = tiny_params(tmp_path, configs={k: dict(v) for k, v in CONFIGS.items()}, **override)
    code = main(["--params", str(params), "--config", "odds_1_8-reject", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()


@pytest.mark.parametrize("error", [RuntimeError("killed"), InputError("bad tokenizer.")])
def test_failed_training_leaves_no_model_or_live_dir(tmp_path, monkeypatch, error):
    import stages.wl_train as stage

    def crash(examples, tokenizer, spec, training, *, out_dir, live_dir, **kwargs):
        for path in (out_dir, live_dir):
            path.mkdir(parents=True)
            (path / "partial.json").write_text("{}")
        raise error

    monkeypatch.setattr(stage, "train_weighted", crash)
    monkeypatch.setattr(stage, "load_tokenizer", lambda path: None)
    params = tiny_params(tmp_path, configs=CONFIGS)
    train = write_jsonl(tmp_path / "train.jsonl", [row("fine", "\\boxed{Accept}"), row("weak", "\\boxed{Reject}")])
    out, live, checkpoints = tmp_path / "m", tmp_path / "live", tmp_path / "c"
    argv = ["--params", str(params), "--config", "odds_1_2-baseline", "--train", str(train), "--tokenizer", str(tmp_path / "tok"),
            "--out", str(out), "--checkpoints", str(checkpoints), "--live", str(live)]
    if isinstance(error, InputError):
        assert stage.main(argv) == 2
    else:
        with pytest.raises(RuntimeError, match="killed"):
            stage.main(argv)
    assert not out.exists() and not live.exists()


@pytest.mark.parametrize("override", [{"seed": "zero"}, {"seed": True}, {"weighted.baseline_gamma": "one"}])
def test_bad_seed_or_baseline_gamma_fails_before_training(tmp_path, override, caplog):
    from stages.wl_train import main

    params = tiny_params(tmp_path, configs=CONFIGS)
    write_params(params, override, source=params)
    key = next(iter(override))
    code = main(["--params", str(params), "--config", "odds_1_2-baseline", "--train", str(tmp_path / "missing.jsonl"),
                 "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "m"), "--checkpoints", str(tmp_path / "c")])
    assert code == 2 and not (tmp_path / "m").exists()
    assert f"key '{key}'" in caplog.text


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
    assert configs["odds_1_2-baseline"]["gamma_key"] != "gamma"


def _train_function(tmp_path, rows, callbacks=()):
    """train_weighted on decision rows read back from ``tmp_path/train.jsonl`` (the run's input file)."""
    from lmlab.modeling import ModelSpec
    from lmlab.tokenization import train_bpe_tokenizer
    from lmlab.training import TrainingParams
    from lmlab.weighted.data import read_decisions
    from lmlab.weighted.training import train_weighted
    from tests.weighted.helpers import write_jsonl

    data = write_jsonl(tmp_path / "train.jsonl", rows)
    texts = [turn["value"] for r in rows for turn in r["conversations"]]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    training = TrainingParams(max_steps=4, batch_size=4, save_steps=2, logging_steps=2, device="cpu")
    spec = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)
    return train_weighted(read_decisions(data), tokenizer, spec, training, gamma=2.0, variant="accept",
                          scope="sequence", seed=0, out_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ck",
                          live_dir=tmp_path / "live", resolved_params={"gamma": 2.0}, inputs=[data],
                          data_path=data, callbacks=callbacks)


def test_a_killed_run_starts_over_when_its_training_data_changed(tmp_path):
    """The weighted fingerprint covered params only: a changed training set resumed the old run."""
    from tests.interruption import KillAfterSave, SimulatedKill
    from tests.weighted.helpers import row

    rows = [row(f"Paper {i}: solid method, clear gains.", r"\boxed{Accept}" if i % 2 else r"\boxed{Reject}", f"r{i}")
            for i in range(16)]
    with pytest.raises(SimulatedKill):
        _train_function(tmp_path, rows, callbacks=[KillAfterSave(2)])
    assert _train_function(tmp_path, rows)["resumed_from"] == "checkpoint-2"
    with pytest.raises(SimulatedKill):
        _train_function(tmp_path, rows, callbacks=[KillAfterSave(2)])
    changed = _train_function(tmp_path, rows[1:] + rows[:1])
    assert changed["resumed_from"] is None and changed["steps"] == 4
    assert json.loads((tmp_path / "model" / "train_summary.json").read_text())["gamma"] == 2.0


def _train_with_eval(tmp_path, rows, eval_rows):
    """train_weighted for 4 steps, evaluating the decision NLL every 2 steps when ``eval_rows``."""
    from lmlab.modeling import ModelSpec
    from lmlab.tokenization import train_bpe_tokenizer
    from lmlab.training import TrainingParams
    from lmlab.weighted.data import read_decisions
    from lmlab.weighted.training import train_weighted

    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", eval_rows) if eval_rows else None
    tokenizer = train_bpe_tokenizer([t["value"] for r in rows for t in r["conversations"]], vocab_size=300)
    training = TrainingParams(max_steps=4, batch_size=4, eval_steps=2, save_steps=4, logging_steps=2, device="cpu")
    spec = ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=128)
    train_weighted(read_decisions(data), tokenizer, spec, training, gamma=4.0, variant="accept", scope="sequence",
                   seed=0, out_dir=tmp_path / "model", checkpoint_dir=tmp_path / "ck", live_dir=tmp_path / "live",
                   resolved_params={"gamma": 4.0}, inputs=[data], data_path=data,
                   eval_examples=read_decisions(test) if test else (), eval_path=test)
    return tmp_path


def test_decision_nll_is_logged_unweighted_and_leaves_the_weights_unchanged(tmp_path):
    """Issue 17: weighted training logs eval/decision_nll, the UNWEIGHTED NLL of the gold decision
    token on the eval rows (comparable across gammas); evaluating does not change the trained model."""
    import math

    import torch

    from lmlab.modeling import load_model
    from lmlab.tokenization import load_tokenizer
    from lmlab.weighted.data import read_decisions
    from lmlab.weighted.tokens import encode_decisions

    rows = [row(f"Paper {i}: {'solid method, clear gains' if i % 2 else 'weak baselines, unclear'}.",
                r"\boxed{Accept}" if i % 2 else r"\boxed{Reject}", f"r{i}") for i in range(16)]
    test = [row(f"Test {i}: {'clear gains' if i % 3 else 'unclear'}.", r"\boxed{Accept}" if i % 3 else r"\boxed{Reject}",
                f"t{i}") for i in range(9)]
    with_eval = _train_with_eval(tmp_path / "a", rows, test)
    without = _train_with_eval(tmp_path / "b", rows, [])
    assert (with_eval / "model/model.safetensors").read_bytes() == (without / "model/model.safetensors").read_bytes()
    tsv = (with_eval / "live/plots/metrics/eval/decision_nll.tsv").read_text().split()
    assert tsv[:2] == ["step", "decision_nll"] and [int(s) for s in tsv[2::2]] == [2, 4]
    assert not (without / "live/plots/metrics/eval").exists()
    # the logged value at the last step is the mean -log p(gold decision token) of the final model, no gamma in it
    model, tok = load_model(with_eval / "model", "causal").eval(), load_tokenizer(with_eval / "model")
    encoded, _ = encode_decisions(tok, read_decisions(with_eval / "test.jsonl"), 128)
    nlls = []
    with torch.no_grad():
        for e in encoded:
            logits = model(torch.tensor([e.input_ids[: e.decision_pos]])).logits[0, -1]
            gold = e.accept_id if e.accept else e.reject_id
            nlls.append(-torch.log_softmax(logits.double(), -1)[gold].item())
    assert math.isclose(float(tsv[-1]), sum(nlls) / len(nlls), rel_tol=1e-4)
