"""Write-up profiles: every profile resolves against params.yaml and type-checks as the stages load it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmlab.config import read_params_file
from lmlab.errors import ParamsError
from lmlab.profiles import apply_overlay, load_profile, overlay_keys, set_param_args
from tests.conftest import REPO_ROOT, load_script

PROFILES = sorted((REPO_ROOT / "profiles").glob("*.yaml"))
EXPECTED = {"ilm_data_train", "ilm_eval", "ensemble", "weighted", "monotonic"}


def test_one_profile_per_writeup_each_naming_its_writeup():
    assert {p.stem for p in PROFILES} >= EXPECTED
    for path in PROFILES:
        _, meta = load_profile(path)
        assert meta.get("writeup") and meta.get("description"), f"{path.name}: profile: writeup and description"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_key_exists_in_params_yaml(path: Path):
    overlay, _ = load_profile(path)
    keys = overlay_keys(overlay, read_params_file(REPO_ROOT / "params.yaml"), profile_path=path)
    assert len(keys) >= 3


@pytest.mark.slow
def test_every_profile_type_checks_through_the_stages_loaders():
    script = load_script("profiles")
    calls = script.stage_loader_calls()
    # the scan finds the loads of every family, templated keys (foreach items) included
    assert {c.stage for c in calls} >= {"ilm_train", "ens_train", "wl_train", "mono_train", "tokenizer"}
    baseline = script.check_params_file(REPO_ROOT / "params.yaml", calls)
    assert baseline > 30
    for path in PROFILES:
        assert script.check_profile(path, calls=calls) == baseline, path.name


@pytest.mark.slow
def test_a_wrong_type_in_a_profile_names_the_profiles_line(tmp_path: Path):
    script = load_script("profiles")
    bad = tmp_path / "bad.yaml"
    bad.write_text("weighted:\n  training:\n    lr: fast\n")
    with pytest.raises(ParamsError) as caught:
        script.check_profile(bad)
    assert (caught.value.path, caught.value.line, caught.value.column) == (str(bad), 3, 5)
    assert caught.value.key == "weighted.training.lr"


def test_an_unknown_key_is_refused_with_its_position(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: {writeup: '003', description: x}\nweighted:\n  trainin:\n    lr: 1.0\n")
    overlay, meta = load_profile(bad)
    assert meta["writeup"] == "003"
    with pytest.raises(ParamsError) as caught:
        overlay_keys(overlay, read_params_file(REPO_ROOT / "params.yaml"), profile_path=bad)
    assert (caught.value.line, caught.value.column, caught.value.key) == (3, 3, "weighted.trainin")


def test_overrides_are_leaves_and_dvc_parses_them_back():
    params = {"a": {"b": 1, "levels": [], "m": {"x": 1, "y": 2}, "empty": {}}, "top": 0.5}
    overlay = {"a": {"levels": ["A1", "B2"], "m": {"y": None}, "empty": {"k": 1}}, "top": 1e-5}
    keys = overlay_keys(overlay, params)
    assert keys == {"a.levels": ["A1", "B2"], "a.m.y": None, "a.empty": {"k": 1}, "top": 1e-5}
    args = set_param_args(keys)
    assert args[::2] == ["-S"] * 4
    parsed = {arg.split("=", 1)[0]: yaml.safe_load(arg.split("=", 1)[1]) for arg in args[1::2]}
    assert parsed == keys
    applied = apply_overlay(params, keys)
    assert applied["a"] == {"b": 1, "levels": ["A1", "B2"], "m": {"x": 1, "y": None}, "empty": {"k": 1}}
    assert params["a"]["levels"] == []  # the base is not modified
