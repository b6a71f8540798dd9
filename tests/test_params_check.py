"""The check_params stage (lmlab.params_check): the whole params.yaml through every stage's loader, first and fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.errors import ParamsError
from lmlab.params_check import check_params_file, stage_loader_calls
from stages import check_params
from tests.conftest import REPO_ROOT, write_params

HEAVY = ("torch", "transformers", "pandas", "nltk", "scipy", "sklearn")


@pytest.fixture(scope="module")
def calls():
    return stage_loader_calls(REPO_ROOT / "stages", REPO_ROOT / "dvc.yaml")


def test_the_committed_params_pass_and_every_family_is_checked(calls) -> None:
    assert {c.stage for c in calls} >= {"ilm_train", "ilm_mask", "ens_train", "ens_compare", "wl_train", "wl_eval",
                                       "mono_train", "mono_attack", "tokenizer"}
    assert check_params_file(REPO_ROOT / "params.yaml", calls) > 60


def test_the_check_imports_no_model_code() -> None:
    """The check runs before any stage: it must cost a fraction of a second, not torch's import."""
    probe = ("import sys, json; from pathlib import Path; from lmlab.params_check import check_params_file, "
             "stage_loader_calls; check_params_file(Path('params.yaml'), stage_loader_calls(Path('stages'), "
             f"Path('dvc.yaml'))); print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize(("value", "what"), [("abc", "expected a number, got 'abc'"), (-1.0, "must be a number > 0")])
def test_a_bad_gamma_exits_2_naming_its_line_before_any_output(tmp_path: Path, capsys, value, what) -> None:
    params = write_params(tmp_path / "params.yaml", {"gamma": value})
    out = tmp_path / "reports" / "params_check.txt"
    assert check_params.main(["--params", str(params), "--out", str(out),
                              "--stages", str(REPO_ROOT / "stages"), "--dvc-yaml", str(REPO_ROOT / "dvc.yaml")]) == 2
    line = next(n for n, text in enumerate(params.read_text().splitlines(), 1) if text.startswith("gamma:"))
    errors = [row for row in capsys.readouterr().err.splitlines() if " ERROR " in row]
    assert len(errors) == 1, errors
    assert f"{params}:{line}:1, key 'gamma': " in errors[0] and what in errors[0]
    assert "git checkout params.yaml" in errors[0] and "Traceback" not in errors[0]
    assert not out.exists()


def test_a_nested_typo_names_the_section_key(tmp_path: Path, calls) -> None:
    params = write_params(tmp_path / "params.yaml", {"monotonic.attack.uat.restarts": "two"})
    with pytest.raises(ParamsError) as caught:
        check_params_file(params, calls)
    assert caught.value.key == "monotonic.attack.uat.restarts" and caught.value.line


def test_the_marker_is_constant_so_nothing_downstream_reruns(tmp_path: Path) -> None:
    out = tmp_path / "params_check.txt"
    argv = ["--params", str(REPO_ROOT / "params.yaml"), "--out", str(out), "--stages", str(REPO_ROOT / "stages"),
            "--dvc-yaml", str(REPO_ROOT / "dvc.yaml")]
    assert check_params.main(argv) == 0
    first = out.read_bytes()
    assert check_params.main(argv) == 0
    assert out.read_bytes() == first == (REPO_ROOT / "reports" / "params_check.txt").read_bytes()


def test_every_stage_runs_after_check_params() -> None:
    """DVC orders stages by dependencies only: each must have check_params upstream, so it runs first."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        graph = repo.index.graph  # edges: stage -> the stages it depends on
        stages = {stage.addressing: stage for stage in graph}
        check = stages.pop("check_params")
        not_after = sorted(name for name, stage in stages.items() if check not in nx.descendants(graph, stage))
    assert not not_after, f"add reports/params_check.txt to the deps of: {not_after}"
