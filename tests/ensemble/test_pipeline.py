"""The Ensemble family in dvc.yaml/params.yaml, and the end-to-end `dvc repro ens_compare`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_repository


def _load(repo_root: Path):
    return yaml.safe_load((repo_root / "dvc.yaml").read_text()), yaml.safe_load((repo_root / "params.yaml").read_text())


def test_compare_deps_cover_every_model(repo_root):
    """Adding a model to ensemble.models needs its `models/ensemble/<key>` dep in ens_compare."""
    dvc, params = _load(repo_root)
    deps = dvc["stages"]["ens_compare"]["deps"]
    model_deps = {d.split("/")[-1] for d in deps if d.startswith("models/ensemble/")}
    assert model_deps == set(params["ensemble"]["models"])
    assert dvc["stages"]["ens_train"]["foreach"] == "${ensemble.models}"
    assert "scripts/launch stages/ens_train.py" in dvc["stages"]["ens_train"]["do"]["cmd"]


@pytest.mark.slow
def test_dvc_repro_ens_compare_end_to_end(repo_root, tmp_path):
    """Fresh copy of the working tree, small params override, `dvc repro ens_compare`."""
    models = set(_load(repo_root)[1]["ensemble"]["models"])
    small = {"ensemble.sample.n_rows": 96, "ensemble.compare.max_new_tokens": 16}
    training = {"max_steps": 4, "eval_steps": 4, "save_steps": 4, "logging_steps": 2}
    for name in models:
        small.update({f"ensemble.models.{name}.training.{key}": value for key, value in training.items()})
    repo = copy_repository(tmp_path / "repo", small)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "LMLAB_NO_PROGRESS": "1"}
    run = subprocess.run(["dvc", "repro", "ens_compare"], cwd=repo, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    metrics = json.loads((repo / "reports/metrics/ensemble.json").read_text())
    assert set(metrics["format_accuracy"]) == set(metrics["rouge1"]) == set(metrics["rougeL"]) == models
    flat = [metrics["agreement_rate"], metrics["n"], *metrics["rouge1"].values(), *metrics["format_accuracy"].values()]
    assert all(math.isfinite(v) for v in flat)
    assert (repo / "reports/ensemble/report.json").exists()
    assert (repo / "reports/plots/ensemble_class_accuracy.png").exists()
    assert (repo / "reports/ensemble/examples.csv").exists() and (repo / "reports/writeup/ensemble.json").exists()
    assert 0 <= metrics["writeup_full_agreement_rate"] <= 1
    shown = subprocess.run(["dvc", "metrics", "show", "--json"], cwd=repo, env=env, capture_output=True, text=True)
    assert "agreement_rate" in shown.stdout
    status = subprocess.run(["dvc", "status", "ens_compare"], cwd=repo, env=env, capture_output=True, text=True)
    assert "up to date" in status.stdout
