"""lmlab.monotonic.constraint: non-negative FFN weights on GPT-NeoX, GPT-2 (Conv1D) and T5; activations; save/load."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import parametrize
from transformers import AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

from lmlab.errors import InputError
from lmlab.modeling import ModelSpec, build_model
from lmlab.monotonic.constraint import (
    MonotoneActivation,
    MonotonicParams,
    activation_minimum,
    constrained_modules,
    count_constrained,
    make_monotonic,
    min_constrained_weight,
    read_marker,
    select_modules,
    strip_parametrizations,
    write_marker,
)


def _model(name: str, tokenizer, seed: int = 0):
    return build_model(ModelSpec(name, n_layer=2, d_model=32, n_head=2, d_ff=64, max_positions=64), tokenizer, seed)


@pytest.mark.parametrize("name", ["tiny-gpt-neox", "tiny-gpt2"])
@pytest.mark.parametrize("phi", ["softplus", "abs", "exp"])
def test_weights_nonnegative_before_and_after_an_optimizer_step(name, phi, tiny_tokenizer):
    model = _model(name, tiny_tokenizer)
    assert min(float(m.weight.detach().min()) for _, m in select_modules(model, "mlp_both")) < 0  # random init has negatives
    make_monotonic(model, MonotonicParams(parametrization=phi))
    assert min_constrained_weight(model) >= 0
    opt = torch.optim.SGD(model.parameters(), lr=10.0)  # a huge step would push plain weights negative
    ids = torch.randint(0, len(tiny_tokenizer), (2, 12))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    assert min_constrained_weight(model) >= 0


def test_gpt2_conv1d_modules_are_constrained_and_attention_is_not(tiny_gpt2):
    summary = make_monotonic(tiny_gpt2, MonotonicParams(scope="mlp_both"))
    names = [n for n, _ in constrained_modules(tiny_gpt2)]
    assert names == summary["modules"]
    assert sorted(names) == sorted(f"transformer.h.{i}.mlp.{p}" for i in range(2) for p in ("c_fc", "c_proj"))
    assert all(isinstance(tiny_gpt2.get_submodule(n), Conv1D) for n in names)
    assert not any("attn" in n for n in names)


def test_scopes_select_the_documented_modules(tiny_tokenizer):
    neox = _model("tiny-gpt-neox", tiny_tokenizer)
    suffixes = lambda scope: sorted({n.split("layers.0.")[-1] for n, _ in select_modules(neox, scope) if "layers.0." in n})  # noqa: E731
    assert suffixes("mlp_in") == ["mlp.dense_h_to_4h"]
    assert suffixes("mlp_both") == ["mlp.dense_4h_to_h", "mlp.dense_h_to_4h"]
    assert suffixes("mlp_in_attn_out") == ["attention.dense", "mlp.dense_h_to_4h"]
    gpt2 = _model("tiny-gpt2", tiny_tokenizer)
    assert {n.split("h.0.")[-1] for n, _ in select_modules(gpt2, "mlp_in_attn_out") if "h.0." in n} == {"mlp.c_fc", "attn.c_proj"}


def test_t5_ffns_are_constrained(tiny_tokenizer):
    t5 = _model("tiny-t5", tiny_tokenizer)
    summary = make_monotonic(t5, MonotonicParams())
    assert summary["modules"] and all(n.endswith(("DenseReluDense.wi", "DenseReluDense.wo")) for n in summary["modules"])
    assert summary["provably_monotone_ffn"]  # T5 v1.0 uses ReLU


def test_parameter_count_is_computed_from_the_model(tiny_tokenizer):
    model = _model("tiny-gpt-neox", tiny_tokenizer)
    expected = sum(m.weight.numel() for _, m in select_modules(model, "mlp_both"))
    summary = make_monotonic(model, MonotonicParams())
    assert summary["constrained_parameters"] == expected == count_constrained(model) == 2 * 2 * 32 * 64


def test_init_abs_and_clamp(tiny_tokenizer):
    model = _model("tiny-gpt-neox", tiny_tokenizer)
    name = "gpt_neox.layers.0.mlp.dense_h_to_4h"
    original = model.get_submodule(name).weight.detach().clone()
    a, c = copy.deepcopy(model), copy.deepcopy(model)
    make_monotonic(a, MonotonicParams(init="abs"))
    make_monotonic(c, MonotonicParams(init="clamp"))
    assert torch.allclose(a.get_submodule(name).weight, original.abs() + 1e-4, atol=1e-6)
    assert torch.allclose(c.get_submodule(name).weight, original.clamp_min(1e-6), atol=1e-6)


def test_baseline_copy_carries_no_parametrization(tiny_tokenizer):
    base = _model("tiny-gpt-neox", tiny_tokenizer)
    mono = copy.deepcopy(base)
    make_monotonic(mono, MonotonicParams())
    assert constrained_modules(mono)
    assert not any(parametrize.is_parametrized(m) for m in base.modules())
    assert min(float(m.weight.detach().min()) for _, m in select_modules(base, "mlp_both")) < 0


@pytest.mark.parametrize("base, x_star, y_star", [("gelu", -0.75179, -0.16997), ("gelu_new", -0.75246, -0.17004)])
def test_activation_minimum_constants(base, x_star, y_star):
    x, y = activation_minimum(base)
    assert x == pytest.approx(x_star, abs=2e-5) and y == pytest.approx(y_star, abs=2e-5)
    act = MonotoneActivation(base)
    grid = torch.linspace(-8, 8, 4001)
    assert (act(grid).diff() >= 0).all()
    above = grid > x
    assert torch.equal(act(grid)[above], act.fn(grid)[above])


@pytest.mark.parametrize("name, mlp", [("tiny-gpt-neox", "gpt_neox.layers.0.mlp"), ("tiny-gpt2", "transformer.h.0.mlp")])
def test_mono_gelu_ffn_jacobian_is_nonnegative(name, mlp, tiny_tokenizer):
    model = _model(name, tiny_tokenizer)
    summary = make_monotonic(model, MonotonicParams(activation="mono_gelu"))
    assert summary["provably_monotone_ffn"] and f"{mlp}.act" in summary["swapped_activations"]
    ffn = model.get_submodule(mlp).eval()
    torch.manual_seed(0)
    for _ in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: ffn(v[None])[0], 3 * torch.randn(32))
        assert jac.min() >= 0


def test_keep_activation_is_reported_as_not_provably_monotone(tiny_tokenizer):
    model = _model("tiny-gpt-neox", tiny_tokenizer)
    summary = make_monotonic(model, MonotonicParams(activation="keep"))
    assert not summary["provably_monotone_ffn"] and summary["activation_name"] == "gelu"


def test_no_matching_modules_lists_module_names():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(InputError, match="no feed-forward module.*modules with weights: 0, 2"):
        make_monotonic(model, MonotonicParams())


@pytest.mark.parametrize("activation", ["keep", "mono_gelu"])
def test_save_load_round_trip_reproduces_logits(activation, tmp_path, tiny_tokenizer):
    model = _model("tiny-gpt-neox", tiny_tokenizer)
    summary = make_monotonic(model, MonotonicParams(activation=activation))
    ids = torch.randint(0, len(tiny_tokenizer), (2, 16))
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    assert strip_parametrizations(model) == len(summary["modules"])
    model.save_pretrained(tmp_path)
    write_marker(tmp_path, summary)
    activation_minimum.cache_clear()  # a fresh process: the minimum is computed inside from_pretrained
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-5)
    assert min_constrained_weight(loaded, read_marker(tmp_path)["modules"]) >= 0
    assert isinstance(loaded.get_submodule("gpt_neox.layers.0.mlp.act"), MonotoneActivation) == (activation == "mono_gelu")
