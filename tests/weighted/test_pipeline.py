"""End to end: `dvc exp run -S gamma=8.0` in a temporary copy re-runs only the weighted stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_repository
from tests.weighted.helpers import CONFIGS, SMALL, family_dvc_yaml, run_ok


@pytest.mark.slow
def test_exp_run_gamma_reruns_only_the_weighted_family(tmp_path, repo_root):
    small = {**SMALL, "weighted.configs": CONFIGS}
    # The code and params only; dvc.yaml becomes the family's stages (committed before the first run).
    work = copy_repository(tmp_path / "repo", small, files=("src", "stages", "pyproject.toml", "params.yaml"))
    (work / "dvc.yaml").write_text(family_dvc_yaml(repo_root))
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYTHONPATH": str(work / "src"),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "LMLAB_PROGRESS": "0"}
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "weighted stages"], work, env)
    run_ok(["dvc", "repro"], work, env)
    before = json.loads((work / "reports/metrics/weighted.json").read_text())
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "baseline results"], work, env)

    out = run_ok(["dvc", "exp", "run", "-S", "gamma=8.0"], work, env)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    # check_params validates the changed params.yaml first; its constant marker re-runs nothing else
    assert ran == {"check_params", "wl_train@odds_1_2-accept", "wl_eval"}, out[-2000:]
    after = json.loads((work / "reports/metrics/weighted.json").read_text())
    assert before["gamma"] == 4.0 and after["gamma"] == 8.0
    assert after["odds_1_2-baseline"] == before["odds_1_2-baseline"]  # cached model, same metrics
    assert after["odds_1_2-accept"]["gamma"] == 8.0 and before["odds_1_2-accept"]["gamma"] == 4.0
    proc = subprocess.run(["dvc", "metrics", "diff", "--json"], cwd=work, env=env, capture_output=True, text=True)
    diff = json.loads(proc.stdout)
    assert "gamma" in diff["reports/metrics/weighted.json"]


@pytest.mark.slow
def test_lab_sweep_runs_the_grid_and_reports_the_criteria(tmp_path, repo_root):
    """`scripts/lab sweep` with no argument: the grid's gammas as experiments, then pass/fail with the evidence."""
    grid = {"odds_1_2": [4.0, 8.0]}  # baseline (gamma 1) + odds_1_2-accept x {4, 8}: a 3-run grid
    work = copy_repository(tmp_path / "repo", {**SMALL, "weighted.configs": CONFIGS, "weighted.grid.gammas": grid},
                           files=("src", "stages", "scripts", "pyproject.toml", "params.yaml"))
    (work / "dvc.yaml").write_text(family_dvc_yaml(repo_root))
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])  # scripts/lab finds its environment installed
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "DVC_NO_ANALYTICS": "1", "LMLAB_PROGRESS": "0",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "weighted stages"], work, env)
    run_ok(["scripts/lab", "repro"], work, env)
    writeup = json.loads((work / "reports/writeup/weighted.json").read_text())
    assert writeup["family"] == "weighted" and writeup["writeup"].startswith("003_")
    rows = {r["quantity"]: r for r in writeup["rows"]}
    assert rows["training set 1:2 (accept:reject): accepted share, %"]["passed"] is True  # 8 of 24 rows
    assert rows["training runs in the grid"]["lmlab"] == 3.0
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "gamma 4 results"], work, env)

    out = run_ok(["scripts/lab", "sweep"], work, env)
    assert "lab sweep: gamma=4.0,8.0 seed=0" in out
    sweep = json.loads((work / "reports/weighted/sweep.json").read_text())
    assert {(p["config"], p["gamma"]) for p in sweep["grid"]} == {
        ("odds_1_2-baseline", 1.0), ("odds_1_2-accept", 4.0), ("odds_1_2-accept", 8.0)}
    assert sweep["runs_outside_grid"] == []
    criteria = {c["name"]: c for c in sweep["criteria"]}
    assert criteria["grid_complete"]["passed"] is True and criteria["grid_complete"]["value"] == 3.0
    group = criteria["monotone_gamma_effect"]["evidence"]["groups"]["1:2/accept"]
    assert group["gammas"] == [1.0, 4.0, 8.0] and criteria["monotone_gamma_effect"]["passed"] is group["monotone"]
    accuracy = [r["accuracy"] for r in sweep["means_over_seeds"]]
    assert criteria["accuracy_for_most"]["value"] == pytest.approx(sum(a > 0.6 for a in accuracy) / 3)
    low = criteria["acceptance_span_low"]
    assert low["value"] == min(r["acceptance_rate"] for r in sweep["means_over_seeds"]) and low["passed"] is not None
    table = (work / "reports/weighted/sweep_criteria.md").read_text()
    assert "| All 3 training jobs complete without errors | PASS | 3 of 3 grid runs have metrics |" in table
    assert "PASS" in out or "FAIL" in out  # the verdicts are printed too
