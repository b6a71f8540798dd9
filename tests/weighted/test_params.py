"""Weighted-loss params: bad values are rejected with the offending key named."""

from __future__ import annotations

import pytest

from lmlab.config import load_mapping, load_params, load_value
from lmlab.errors import ParamsError
from lmlab.weighted.params import (
    GAMMA_HINT,
    EvalParams,
    GridParams,
    RuntimeParams,
    SetsParams,
    WeightedConfig,
    check_configs,
    check_gamma,
    check_grid,
    odds_fraction,
)


@pytest.mark.parametrize("odds", [(0, 1), (1, 0), (-1, 2)])
def test_odds_need_both_counts_positive(odds):
    with pytest.raises(ValueError, match="odds"):
        SetsParams(n_rows=10, odds={"x": odds})


def test_odds_are_accept_to_reject_not_one_in_n():
    """The write-up's "1:2 -> 33%, 1:3 -> 25%, 1:4 -> 20%, 1:8 -> 11%": accept / (accept + reject)."""
    fractions = SetsParams(odds={"a": (1, 2), "b": (1, 3), "c": (1, 4), "d": (1, 8), "e": (1, 1)}).fractions
    assert {k: round(100 * v) for k, v in fractions.items()} == {"a": 33, "b": 25, "c": 20, "d": 11, "e": 50}
    assert odds_fraction((2, 1)) == pytest.approx(2 / 3)


def test_other_bad_values():
    with pytest.raises(ValueError, match="n_rows"):
        SetsParams(n_rows=0, odds={"x": (1, 1)})
    with pytest.raises(ValueError, match="odds"):
        SetsParams(n_rows=10, odds={})
    with pytest.raises(ValueError, match="gammas"):
        GridParams(gammas={"odds_1_2": ()})
    with pytest.raises(ValueError, match="gammas"):
        GridParams(gammas={"odds_1_2": (2.0, 0.0)})
    with pytest.raises(ValueError, match="min_accuracy"):
        GridParams(gammas={"odds_1_2": (2.0,)}, min_accuracy=1.5)
    with pytest.raises(ValueError, match="band_low"):
        EvalParams(band_low=0.8, band_high=0.7)
    with pytest.raises(ValueError, match="cpu_threads"):
        RuntimeParams(cpu_threads=-1)


def test_repository_defaults_load(repo_root):
    params = repo_root / "params.yaml"
    sets = load_params(SetsParams, params, "weighted.sets", top_level=("seed",))
    assert sets.odds["odds_1_2"] == (1, 2) and sets.fractions["odds_1_2"] == pytest.approx(1 / 3)
    assert sets.fractions["odds_1_1"] == 0.5 and sets.n_rows % 24 == 0
    assert load_params(EvalParams, params, "weighted.eval").batch_size > 0
    configs = load_mapping(WeightedConfig, params, "weighted.configs", check=lambda c: check_configs(c, sets.odds))
    assert all(name.startswith(f"{cfg.set}-") for name, cfg in configs.items())  # every name says its set
    baseline = {name: cfg for name, cfg in configs.items() if cfg.gamma_key != "gamma"}
    assert list(baseline) == ["odds_1_2-baseline"] and baseline["odds_1_2-baseline"].set == "odds_1_2"
    grid = load_value(params, "weighted.grid", GridParams, check=lambda g: check_grid(g, sets.odds))
    assert {k: list(v) for k, v in grid.gammas.items()} == {
        "odds_1_2": [2.0, 4.0, 8.0], "odds_1_3": [2.0, 4.0], "odds_1_4": [2.0, 4.0], "odds_1_8": [2.0, 4.0]}


def test_unknown_variant_names_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("weighted:\n  configs:\n    a:\n      set: f\n      variant: sideways\n")
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


def test_check_configs_wants_a_defined_set(tmp_path):
    configs = {"a": WeightedConfig("odds_1_2"), "b": WeightedConfig("odds_9", "reject")}
    with pytest.raises(ParamsError, match="unknown set 'odds_9'") as info:
        check_configs(configs, {"odds_1_2": (1, 2)})
    assert info.value.key == "weighted.configs.b.set" and info.value.path is None
    check_configs(configs, {"odds_1_2": (1, 2), "odds_9": (1, 9)})
    path = tmp_path / "p.yaml"
    path.write_text("weighted:\n  configs:\n    a: {set: odds_1_2}\n    b: {set: odds_9}\n")
    with pytest.raises(ParamsError, match=r"p\.yaml:4:9, key 'weighted\.configs\.b\.set'"):
        load_mapping(WeightedConfig, path, "weighted.configs", check=lambda c: check_configs(c, {"odds_1_2": (1, 2)}))


def test_a_config_named_after_a_set_must_train_on_it():
    sets = {"odds_1_1": (1, 1), "odds_1_2": (1, 2)}
    check_configs({"odds_1_1-baseline": WeightedConfig("odds_1_1"), "mine": WeightedConfig("odds_1_2")}, sets)
    with pytest.raises(ParamsError, match="named after set 'odds_1_2' but trains on 'odds_1_1'") as info:
        check_configs({"odds_1_2-baseline": WeightedConfig("odds_1_1")}, sets)
    assert info.value.key == "weighted.configs.odds_1_2-baseline.set"


def test_grid_sets_must_exist():
    check_grid(GridParams(gammas={"odds_1_2": (2.0,)}), {"odds_1_2": (1, 2)})
    with pytest.raises(ParamsError, match="unknown set 'odds_1_9'") as info:
        check_grid(GridParams(gammas={"odds_1_9": (2.0,)}), {"odds_1_2": (1, 2)})
    assert info.value.key == "weighted.grid.gammas.odds_1_9"
