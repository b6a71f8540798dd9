"""Weighted-loss params: bad values are rejected with the offending key named."""

from __future__ import annotations

import pytest

from lmlab.config import load_params
from lmlab.errors import ParamsError
from lmlab.weighted.params import EvalParams, RuntimeParams, SetsParams, WeightedConfig


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_fraction_outside_open_unit_interval(fraction):
    with pytest.raises(ValueError, match="fractions"):
        SetsParams(size=10, fractions={"x": fraction})


def test_other_bad_values():
    with pytest.raises(ValueError, match="size"):
        SetsParams(size=0, fractions={"x": 0.5})
    with pytest.raises(ValueError, match="band_low"):
        EvalParams(band_low=0.8, band_high=0.7)
    with pytest.raises(ValueError, match="cpu_threads"):
        RuntimeParams(cpu_threads=-1)


def test_repository_defaults_load(repo_root):
    params = repo_root / "params.yaml"
    sets = load_params(SetsParams, params, "weighted.sets", top_level=("seed",))
    assert sets.fractions["frac_1_3"] == pytest.approx(1 / 3) and sets.size % 24 == 0
    assert load_params(EvalParams, params, "weighted.eval").batch_size > 0


def test_unknown_variant_names_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("weighted:\n  configs:\n    a:\n      fraction: f\n      variant: sideways\n")
    with pytest.raises(ParamsError, match="weighted.configs.a.variant"):
        load_params(WeightedConfig, path, "weighted.configs.a")
