"""End to end: `dvc exp run -S gamma=8.0` in a temporary copy re-runs only the weighted stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_repository

BEGIN, END = "  # ===== Weighted-loss family =====", "  # ===== end Weighted-loss family ====="
CONFIGS = {"baseline": {"fraction": "frac_1_2", "variant": "accept", "gamma_key": "weighted.baseline_gamma"},
           "frac_1_2-accept": {"fraction": "frac_1_2", "variant": "accept", "gamma_key": "gamma"}}


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _family_dvc_yaml(repo_root: Path) -> str:
    """The weighted stages only, with wl_eval's model deps reduced to the test's configs."""
    text = (repo_root / "dvc.yaml").read_text()
    block = text[text.index(BEGIN): text.index(END)]
    lines = [ln for ln in block.splitlines()
             if not ln.strip().startswith("- models/weighted/") or ln.strip() == "- models/weighted/tokenizer"
             or ln.strip()[len("- models/weighted/"):] in CONFIGS]
    return "stages:\n" + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_exp_run_gamma_reruns_only_the_weighted_family(tmp_path, repo_root):
    small = {
        "gamma": 4.0,
        "weighted.configs": CONFIGS,
        "weighted.sample.n_pool": 120, "weighted.sample.n_test": 20,
        "weighted.sets.size": 24, "weighted.sets.fractions": {"frac_1_2": 0.5},
        "weighted.model.d_model": 16, "weighted.model.n_head": 2, "weighted.model.d_ff": 32,
        "weighted.tokenizer.vocab_size": 300,
        "weighted.training.max_steps": 3, "weighted.training.batch_size": 8,
        "weighted.training.logging_steps": 1, "weighted.training.save_steps": 3,
    }
    # The code and params only; dvc.yaml becomes the family's stages (committed before the first run).
    work = copy_repository(tmp_path / "repo", small, files=("src", "stages", "pyproject.toml", "params.yaml"))
    (work / "dvc.yaml").write_text(_family_dvc_yaml(repo_root))
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PYTHONPATH": str(work / "src"),
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "LMLAB_PROGRESS": "0"}
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "weighted stages"], work, env)
    _run(["dvc", "repro"], work, env)
    before = json.loads((work / "reports/metrics/weighted.json").read_text())
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "baseline results"], work, env)

    out = _run(["dvc", "exp", "run", "-S", "gamma=8.0"], work, env)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"wl_train@frac_1_2-accept", "wl_eval"}, out[-2000:]
    after = json.loads((work / "reports/metrics/weighted.json").read_text())
    assert before["gamma"] == 4.0 and after["gamma"] == 8.0
    assert after["baseline"] == before["baseline"]  # cached model, same metrics
    assert after["frac_1_2-accept"]["gamma"] == 8.0 and before["frac_1_2-accept"]["gamma"] == 4.0
    proc = subprocess.run(["dvc", "metrics", "diff", "--json"], cwd=work, env=env, capture_output=True, text=True)
    diff = json.loads(proc.stdout)
    assert "gamma" in diff["reports/metrics/weighted.json"]
