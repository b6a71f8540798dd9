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
    assert ran == {"wl_train@odds_1_2-accept", "wl_eval"}, out[-2000:]
    after = json.loads((work / "reports/metrics/weighted.json").read_text())
    assert before["gamma"] == 4.0 and after["gamma"] == 8.0
    assert after["odds_1_2-baseline"] == before["odds_1_2-baseline"]  # cached model, same metrics
    assert after["odds_1_2-accept"]["gamma"] == 8.0 and before["odds_1_2-accept"]["gamma"] == 4.0
    proc = subprocess.run(["dvc", "metrics", "diff", "--json"], cwd=work, env=env, capture_output=True, text=True)
    diff = json.loads(proc.stdout)
    assert "gamma" in diff["reports/metrics/weighted.json"]
