"""The monotonic family on a Llama-architecture model: gated MLPs (what is and is not guaranteed), act_fn, load/train/save/eval."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmlab.modeling import ModelSpec
from lmlab.monotonic.constraint import (
    GATED_REGION,
    MonotoneActivation,
    MonotonicParams,
    activation_minimum,
    gated_ffns,
    make_monotonic,
    min_constrained_weight,
    read_marker,
    strip_parametrizations,
)
from tests.tiny_llama import tiny_llama_dir

TEXTS = [f"The town number {i} has a bridge, a market and {i % 7} old churches near the river." for i in range(80)]


@pytest.fixture()
def llama_dir(tmp_path):
    return tiny_llama_dir(tmp_path / "llama", TEXTS)


def _llama(llama_dir):
    return AutoModelForCausalLM.from_pretrained(llama_dir)


def test_gate_up_and_down_are_constrained_and_the_gated_mlp_is_flagged(llama_dir):
    model = _llama(llama_dir)
    assert gated_ffns(model) == ["model.layers.0.mlp", "model.layers.1.mlp"]
    summary = make_monotonic(model, MonotonicParams(activation="mono_gelu"))
    assert sorted(summary["modules"]) == sorted(f"model.layers.{i}.mlp.{p}" for i in range(2)
                                                for p in ("gate_proj", "up_proj", "down_proj"))
    # Llama's FFN calls act_fn: the clamped SiLU must replace the module the forward uses
    assert summary["swapped_activations"] == ["model.layers.0.mlp.act_fn", "model.layers.1.mlp.act_fn"]
    assert isinstance(model.model.layers[0].mlp.act_fn, MonotoneActivation)
    assert summary["activation_name"] == "mono_silu"
    # non-negative weights + a monotone activation, and still NOT provably monotone: the FFN is gated
    assert summary["provably_monotone_ffn"] is False
    assert summary["gated_mlp"] is True and summary["monotone_region"] == GATED_REGION


@pytest.mark.parametrize("activation", ["keep", "mono_gelu"])
def test_a_constrained_gated_mlp_decreases_for_negative_inputs(activation, llama_dir):
    """x = t * 1, t from -1 to -0.5: gate x and up x are negative (small row sums here), SiLU(gate x) < 0
    and rising, up x < 0 and rising, so their (positive) product falls although every weight is >= 0,
    the activation is non-decreasing there and x only increased."""
    model = _llama(llama_dir)
    make_monotonic(model, MonotonicParams(activation=activation))
    mlp = model.model.layers[0].mlp.eval()
    assert min_constrained_weight(model) >= 0
    with torch.no_grad():
        low, high = mlp(torch.full((1, 32), -1.0)), mlp(torch.full((1, 32), -0.5))
    assert (high < low).all()  # a larger input, a smaller output in every coordinate
    jac = torch.autograd.functional.jacobian(lambda v: mlp(v[None])[0], torch.full((32,), -1.0))
    assert jac.min() < 0


@pytest.mark.parametrize("activation", ["keep", "mono_gelu"])
def test_a_constrained_gated_mlp_is_monotone_on_the_nonnegative_orthant(activation, llama_dir):
    """What is guaranteed: bias-free, weights >= 0, inputs >= 0 -> Jacobian >= 0 (SiLU >= 0 and rising on [0, inf))."""
    model = _llama(llama_dir)
    make_monotonic(model, MonotonicParams(activation=activation))
    mlp = model.model.layers[1].mlp.eval()
    torch.manual_seed(0)
    for _ in range(5):
        x = 3 * torch.rand(32)
        jac = torch.autograd.functional.jacobian(lambda v: mlp(v[None])[0], x)
        assert jac.min() >= 0
    # and not outside it: random inputs of both signs give negative Jacobian entries
    negatives = sum(int(torch.autograd.functional.jacobian(lambda v: mlp(v[None])[0], 3 * torch.randn(32)).min() < 0)
                    for _ in range(5))
    assert negatives > 0


def test_mono_silu_round_trips_through_save_and_from_pretrained(llama_dir, tmp_path):
    model = _llama(llama_dir)
    summary = make_monotonic(model, MonotonicParams(activation="mono_gelu"))
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    strip_parametrizations(model)
    model.save_pretrained(tmp_path / "mono")
    activation_minimum.cache_clear()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "mono").eval()
    assert isinstance(loaded.model.layers[0].mlp.act_fn, MonotoneActivation)
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-5)
    assert min_constrained_weight(loaded, summary["modules"]) >= 0


@pytest.mark.slow
def test_the_monotonic_family_loads_trains_saves_and_scores_a_llama(llama_dir, tmp_path):
    """mono_tokenizer -> mono_pretrain (disabled: a real checkpoint) -> both arms -> mono_eval, on the tiny Llama dir."""
    from lmlab.monotonic.robustness import EvalParams, evaluate_perplexity
    from lmlab.monotonic.training import ArmParams, PretrainParams, run_arm, run_pretrain, start_model
    from lmlab.tokenization import prepare_tokenizer
    from lmlab.training import TrainingParams

    tokenizer = prepare_tokenizer(str(llama_dir), TEXTS, 300, (), is_tiny=False)
    assert tokenizer.pad_token == "</s>"  # Llama tokenizers have none; eos stands in
    tokenizer.save_pretrained(tmp_path / "tok")
    splits = {"train": TEXTS[:60], "valid": TEXTS[60:70], "test": TEXTS[70:]}
    spec = ModelSpec(str(llama_dir))
    run_pretrain(spec, tmp_path / "tok", splits, PretrainParams(enabled=False), 16, 0, tmp_path / "pre",
                 tmp_path / "ck/pre", tmp_path / "live/pre", {}, [])
    assert (tmp_path / "ck/pre").is_dir()  # a declared DVC output, even when nothing is trained
    training = TrainingParams(max_steps=3, batch_size=4, eval_batch_size=8, lr=1e-3, eval_steps=3, save_steps=3,
                              logging_steps=1, device="cpu")
    constraint = MonotonicParams(activation="mono_gelu")
    for arm in ("baseline", "monotonic"):
        run_arm(tmp_path / "pre", ArmParams(constrained=arm == "monotonic", training=training), constraint, splits,
                16, 0, tmp_path / arm, tmp_path / "ck" / arm, tmp_path / "live" / arm, {"arm": arm}, [])
    marker = read_marker(tmp_path / "monotonic")
    assert marker["gated_mlp"] and not marker["provably_monotone_ffn"] and marker["min_weight_after_training"] >= 0
    assert read_marker(tmp_path / "baseline") is None
    mono = AutoModelForCausalLM.from_pretrained(tmp_path / "monotonic")
    assert isinstance(mono.model.layers[0].mlp.act_fn, MonotoneActivation)
    assert min_constrained_weight(mono, marker["modules"]) >= 0
    result = evaluate_perplexity({"baseline": tmp_path / "baseline", "monotonic": tmp_path / "monotonic"},
                                 splits["test"], EvalParams(max_length=32, batch_size=4, bootstrap=50),
                                 before_recovery={"monotonic_before_recovery":
                                                  lambda: start_model(tmp_path / "pre", True, constraint)[0]})
    text = json.dumps(result)
    assert "NaN" not in text and "Infinity" not in text
    assert all(result["ppl"][k] > 1 for k in ("baseline", "monotonic", "monotonic_before_recovery"))
