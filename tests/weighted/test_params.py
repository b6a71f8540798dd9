"""Weighted-loss params: bad values are rejected with the offending key named."""

from __future__ import annotations

import pytest

from lmlab.config import load_mapping, load_params, load_value
from lmlab.errors import ParamsError
from lmlab.weighted.params import (
    GAMMA_HINT,
    EvalParams,
    RuntimeParams,
    SetsParams,
    WeightedConfig,
    check_configs,
    check_gamma,
)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_fraction_outside_open_unit_interval(fraction):
    with pytest.raises(ValueError, match="fractions"):
        SetsParams(n_rows=10, fractions={"x": fraction})


def test_other_bad_values():
    with pytest.raises(ValueError, match="n_rows"):
        SetsParams(n_rows=0, fractions={"x": 0.5})
    with pytest.raises(ValueError, match="band_low"):
        EvalParams(band_low=0.8, band_high=0.7)
    with pytest.raises(ValueError, match="cpu_threads"):
        RuntimeParams(cpu_threads=-1)


def test_repository_defaults_load(repo_root):
    params = repo_root / "params.yaml"
    sets = load_params(SetsParams, params, "weighted.sets", top_level=("seed",))
    assert sets.fractions["frac_1_3"] == pytest.approx(1 / 3) and sets.n_rows % 24 == 0
    assert load_params(EvalParams, params, "weighted.eval").batch_size > 0


def test_unknown_variant_names_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("weighted:\n  configs:\n    a:\n      fraction: f\n      variant: sideways\n")
    with pytest.raises(ParamsError, match="weighted.configs.a.variant"):
        load_params(WeightedConfig, path, "weighted.configs.a")


@pytest.mark.parametrize("gamma", [0.0, -4.0])
def test_check_gamma_rejects_non_positive(gamma):
    with pytest.raises(ParamsError, match="gamma must be a number > 0") as info:
        check_gamma(gamma)
    assert info.value.hint == GAMMA_HINT
    check_gamma(0.5)


def test_gamma_through_the_loader_names_position_and_hint(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("seed: 0\ngamma: -1.0\nweighted:\n  baseline_gamma: 1\n")
    assert load_value(path, "weighted.baseline_gamma", float, check=check_gamma) == 1.0
    with pytest.raises(ParamsError) as info:
        load_value(path, "gamma", float, check=check_gamma, hint=GAMMA_HINT)
    assert f"{path}:2:1, key 'gamma': gamma must be a number > 0, got -1.0." in str(info.value)
    assert "dvc exp run -S gamma=4.0" in str(info.value)


def test_check_configs_wants_a_defined_fraction(tmp_path):
    configs = {"a": WeightedConfig("frac_1_2"), "b": WeightedConfig("frac_9", "reject")}
    with pytest.raises(ParamsError, match="unknown fraction 'frac_9'") as info:
        check_configs(configs, {"frac_1_2": 0.5})
    assert info.value.key == "weighted.configs.b.fraction" and info.value.path is None
    check_configs(configs, {"frac_1_2": 0.5, "frac_9": 0.1})
    path = tmp_path / "p.yaml"
    path.write_text("weighted:\n  configs:\n    a: {fraction: frac_1_2}\n    b: {fraction: frac_9}\n")
    with pytest.raises(ParamsError, match=r"p\.yaml:4:9, key 'weighted\.configs\.b\.fraction'"):
        load_mapping(WeightedConfig, path, "weighted.configs", check=lambda c: check_configs(c, {"frac_1_2": 0.5}))
