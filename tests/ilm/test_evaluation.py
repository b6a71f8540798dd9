"""ILM evaluation: perplexity = exp(mean token NLL), padding invariance, gains with CIs, the stage."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lmlab.errors import InputError
from lmlab.ilm.evaluation import (
    EvalParams,
    document_sums,
    load_ilm_model,
    metrics_from_results,
    perplexity_ci,
    specialization_gains,
    summarize_documents,
)
from lmlab.ilm.sequences import LOSS_KINDS, TargetType, build_dataset
from tests.ilm.train_helpers import DOCS, ilm_tokenizer, masked_docs, save_ilm_dir, tiny_params


@pytest.fixture(scope="module")
def tok():
    return ilm_tokenizer()


@pytest.fixture()
def model_dir(tmp_path, tok):
    return save_ilm_dir(tmp_path / "model", tok, seed=1)


def test_perplexity_is_exp_of_mean_token_nll(model_dir):
    model, tok, tokens = load_ilm_model(model_dir)
    masked = [("I live in a small house. It is nice.", [[(4, 2, 4), (3, 12, 11)]])]
    ds = build_dataset(masked, tok, tokens, 128)
    ids = torch.tensor([ds[0]["input_ids"]])
    types = torch.tensor(ds[0]["target_types"])
    with torch.no_grad():
        logp = F.log_softmax(model(ids).logits[0, :-1], dim=-1)
    nll = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]]
    target = types[1:]
    expected = {
        "context": nll[target == TargetType.CONTEXT],
        "infill": nll[(target == TargetType.INFILL) | (target == TargetType.INFILL_SPECIAL)],
        "infill_textonly": nll[target == TargetType.INFILL],
    }
    summary = summarize_documents(document_sums(model, ds, 1, tok.pad_token_id, batch_size=4))
    for kind in LOSS_KINDS:
        assert summary[f"{kind}_count"] == len(expected[kind]) > 0
        assert summary[f"{kind}_ppl"] == pytest.approx(math.exp(expected[kind].mean().item()), rel=1e-5)


def test_document_sums_do_not_depend_on_padding_or_batching(model_dir):
    model, tok, tokens = load_ilm_model(model_dir)
    masked = masked_docs(DOCS + ["Short one.", "Hi there."], 2, seed=4)
    ds = build_dataset(masked, tok, tokens, 128)
    one = document_sums(model, ds, len(masked), tok.pad_token_id, batch_size=1)
    many = document_sums(model, ds, len(masked), tok.pad_token_id, batch_size=5)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-4)
    assert one[:, 1].sum() > 0 and (one[:, 5] > 0).all()  # every doc has answer tokens


def test_model_dir_without_special_token_map_is_a_clear_error(model_dir):
    (model_dir / "ilm_special_tokens.json").unlink()
    with pytest.raises(InputError, match="special-token map"):
        load_ilm_model(model_dir)


def _synthetic(spec_nll: float, gen_nll: float, n_docs: int = 50):
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 20, size=n_docs).astype(float)
    noise = rng.normal(0, 0.3, size=n_docs)

    def sums(nll):
        out = np.zeros((n_docs, 6))
        out[:, 4], out[:, 5] = (nll + noise) * counts, counts
        return out

    return {"A1": {"A1": {"doc_sums": sums(spec_nll)}}, "all": {"A1": {"doc_sums": sums(gen_nll)}}}


def test_specialization_gain_sign_and_ci():
    params = EvalParams(bootstrap_resamples=500)
    better = specialization_gains(_synthetic(2.0, 2.2), ["A1"], params)["A1"]
    assert better["estimate"] == pytest.approx(1 - math.exp(2.0) / math.exp(2.2), rel=0.05)
    assert 0 < better["low"] <= better["estimate"] <= better["high"]
    same = specialization_gains(_synthetic(2.0, 2.0), ["A1"], params)["A1"]
    assert same["estimate"] == pytest.approx(0.0) and same["low"] <= 0 <= same["high"]


def _textonly_sums(nll_per_token: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.zeros((len(counts), 6))
    out[:, 4], out[:, 5] = nll_per_token * counts, counts
    return out


def test_perplexity_ci_brackets_the_count_weighted_perplexity():
    rng = np.random.default_rng(1)
    counts = rng.integers(3, 30, size=80).astype(float)
    sums = _textonly_sums(rng.normal(2.0, 0.4, size=80), counts)
    params = EvalParams(bootstrap_resamples=1000)
    ci = perplexity_ci(sums, params)
    ppl = summarize_documents(sums)["infill_textonly_ppl"]
    assert ci["estimate"] == pytest.approx(ppl) == pytest.approx(math.exp(sums[:, 4].sum() / sums[:, 5].sum()))
    assert ci["low"] < ppl < ci["high"] and ci["n"] == 80 and ci["n_resamples"] == 1000
    # an independent percentile bootstrap over documents (NLL sum and count drawn together) agrees
    idx = np.random.default_rng(7).integers(0, 80, size=(4000, 80))
    manual = np.exp(sums[idx, 4].sum(axis=1) / sums[idx, 5].sum(axis=1))
    assert ci["low"] == pytest.approx(np.quantile(manual, 0.025), rel=0.02)
    assert ci["high"] == pytest.approx(np.quantile(manual, 0.975), rel=0.02)
    # same seed, same interval; a wider spread of per-document losses gives a wider interval
    assert perplexity_ci(sums, params) == ci
    wide = perplexity_ci(_textonly_sums(rng.normal(2.0, 1.2, size=80), counts), params)
    assert wide["high"] - wide["low"] > ci["high"] - ci["low"]


def test_perplexity_ci_is_a_point_when_every_document_has_the_same_loss():
    counts = np.array([4.0, 9.0, 17.0, 2.0, 30.0])
    ci = perplexity_ci(_textonly_sums(np.full(5, 1.5), counts), EvalParams(bootstrap_resamples=200))
    assert ci["low"] == pytest.approx(math.exp(1.5)) and ci["high"] == pytest.approx(math.exp(1.5))


def test_metrics_carry_a_ppl_interval_per_model_and_level():
    params = EvalParams(bootstrap_resamples=300)
    results = {}
    for model, shift in {"A1": 0.0, "all": 0.3}.items():
        results[model] = {}
        for level in ("A1", "B1"):
            rng = np.random.default_rng(len(level) + int(10 * shift))
            sums = _textonly_sums(rng.normal(2.0 + shift, 0.3, size=40), rng.integers(5, 20, size=40).astype(float))
            results[model][level] = {**summarize_documents(sums), "infill_textonly_ppl_ci": perplexity_ci(sums, params),
                                     "doc_sums": sums}
    metrics, report = metrics_from_results(results, specialization_gains(results, ["A1", "B1"], params))
    assert set(metrics) == {"ppl", "ppl_ci", "specialization_gain", "specialization_gain_ci"}
    for model in results:
        for level in ("A1", "B1"):
            ci = metrics["ppl_ci"][model][level]
            assert set(ci) == {"low", "high"}
            assert ci["low"] < metrics["ppl"][model][level] < ci["high"]
            assert ci == {k: results[model][level]["infill_textonly_ppl_ci"][k] for k in ("low", "high")}
    full = report["results"]["all"]["B1"]
    assert "doc_sums" not in full and full["infill_textonly_ppl_ci"]["n"] == 40
    json.dumps(metrics)  # plain JSON types only


@pytest.mark.slow
def test_eval_stage_writes_contract_keys_plots_and_is_deterministic(tmp_path, tok):
    from stages.ilm_eval import main

    models = {"A1": save_ilm_dir(tmp_path / "A1", tok, 1), "all": save_ilm_dir(tmp_path / "all", tok, 2)}
    for level, docs in {"A1": DOCS[:3], "all": DOCS}.items():
        (tmp_path / f"{level}.pkl").write_bytes(pickle.dumps(masked_docs(docs, 3, seed=5)))
    params = tiny_params(tmp_path / "params.yaml")
    argv = ["--params", str(params), "--model", f"A1={models['A1']}", "--model", f"all={models['all']}",
            "--test", f"A1={tmp_path / 'A1.pkl'}", "--test", f"all={tmp_path / 'all.pkl'}",
            "--metrics", str(tmp_path / "out/ilm.json"), "--report", str(tmp_path / "out/eval.json"),
            "--heatmap", str(tmp_path / "out/heat.png"), "--gain-plot", str(tmp_path / "out/gain.png"),
            "--plot-data", str(tmp_path / "out/plot_data")]
    assert main(argv) == 0
    # DVC plot data: per model, one row per test level, the metrics' perplexity
    a1_rows = json.loads((tmp_path / "out/plot_data/ppl_by_level/A1.json").read_text())
    assert [r["level"] for r in a1_rows] == ["A1", "all"]
    assert a1_rows[0]["ppl"] == pytest.approx(json.loads((tmp_path / "out/ilm.json").read_text())["ppl"]["A1"]["A1"])
    metrics = json.loads((tmp_path / "out/ilm.json").read_text())
    assert set(metrics) == {"ppl", "ppl_ci", "specialization_gain", "specialization_gain_ci"}
    assert {m: set(v) for m, v in metrics["ppl"].items()} == {"A1": {"A1", "all"}, "all": {"A1", "all"}}
    for model, by_level in metrics["ppl"].items():
        for level, ppl in by_level.items():
            ci = metrics["ppl_ci"][model][level]
            assert set(ci) == {"low", "high"} and ci["low"] <= ppl <= ci["high"]
    assert set(metrics["specialization_gain"]) == {"A1"} and set(metrics["specialization_gain_ci"]["A1"]) == {
        "low", "high"}
    ppl = metrics["ppl"]
    assert metrics["specialization_gain"]["A1"] == pytest.approx((ppl["all"]["A1"] - ppl["A1"]["A1"]) / ppl["all"]["A1"])
    report = json.loads((tmp_path / "out/eval.json").read_text())
    a1 = report["results"]["A1"]["A1"]
    assert a1["documents"] == 3 and a1["examples"] == 6 and a1["infill_textonly_count"] > 0
    assert a1["infill_ppl"] == pytest.approx(math.exp(a1["infill_loss"]))
    for png in ("heat.png", "gain.png"):
        assert (tmp_path / "out" / png).read_bytes()[:4] == b"\x89PNG"
    first = (tmp_path / "out/ilm.json").read_bytes()
    assert main(argv) == 0 and (tmp_path / "out/ilm.json").read_bytes() == first
    # an empty test split is an input error and leaves no outputs
    (tmp_path / "A1.pkl").write_bytes(pickle.dumps([]))
    assert main(argv) == 2
    assert not (tmp_path / "out/ilm.json").exists()


def test_eval_params_are_validated():
    with pytest.raises(ValueError, match="max_documents"):
        EvalParams(max_documents=0)


@pytest.mark.slow
def test_transfer_eval_compares_transfer_specialised_and_general_on_one_level(tmp_path, tok):
    """What `ilm_eval_transfer@A1` runs: three models, the level's own test set, two gains against `all`."""
    from stages.ilm_eval import main

    models = {name: save_ilm_dir(tmp_path / name, tok, seed) for seed, name in enumerate(["A1", "all", "transfer-A1"])}
    (tmp_path / "A1.pkl").write_bytes(pickle.dumps(masked_docs(DOCS[:3], 3, seed=5)))
    argv = ["--params", str(tiny_params(tmp_path / "params.yaml")),
            *[arg for name, path in models.items() for arg in ("--model", f"{name}={path}")],
            "--test", f"A1={tmp_path / 'A1.pkl'}",
            "--metrics", str(tmp_path / "out/A1.json"), "--report", str(tmp_path / "out/A1.report.json"),
            "--heatmap", str(tmp_path / "out/ppl.png"), "--gain-plot", str(tmp_path / "out/gain.png")]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "out/A1.json").read_text())
    assert {m: set(v) for m, v in metrics["ppl"].items()} == {name: {"A1"} for name in models}
    ppl = metrics["ppl"]
    assert set(metrics["specialization_gain"]) == {"A1", "transfer-A1"}
    assert metrics["specialization_gain"]["transfer-A1"] == pytest.approx(
        (ppl["all"]["A1"] - ppl["transfer-A1"]["A1"]) / ppl["all"]["A1"])
