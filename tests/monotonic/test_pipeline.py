"""End to end: `dvc repro mono_attack` in a temporary copy of the repository with tiny params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_repository
from tests.monotonic.helpers import tiny_monotonic_params


@pytest.mark.slow
def test_dvc_repro_mono_attack(tmp_path):
    tiny = tiny_monotonic_params("data/monotonic/sample/general_text.txt")
    repo = copy_repository(tmp_path / "repo", {"monotonic": tiny})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "mono_attack"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    metrics = json.loads((repo / "reports/metrics/monotonic.json").read_text())
    assert set(metrics["ppl"]) == {"baseline", "monotonic", "pretrained", "monotonic_before_recovery"}
    assert "criteria" in metrics and "attack_reduction_meaningful" in metrics
    assert json.loads((repo / "reports/writeup/monotonic.json").read_text())["family"] == "monotonic"
    detail = json.loads((repo / "reports/monotonic/attack_metrics.json").read_text())
    for key in ("ppl_gap_pct", "attack_reduction_pct"):
        assert key in metrics and metrics[key] == detail[key]
    for key in ("attack_change_pp", "attack_reduction_pct_rel_nll"):  # detail: in the report JSON only
        assert key in detail and key not in metrics
    for model in ("baseline", "monotonic"):
        assert "ppl_increase_pct" in metrics["uat"][model] and "success_rate" in metrics["hotflip"][model]
    assert (repo / "reports/plots/monotonic_robustness.png").stat().st_size > 0
    for name in ("uat", "hotflip"):
        assert (repo / f"reports/monotonic/{name}.jsonl").read_text().count("\n") > 0
    assert (repo / "dvclive/monotonic/monotonic/metrics.json").exists()
    assert (repo / "models/monotonic/monotonic/monotonic.json").exists()
    # DVC plot data (git-tracked, cache: false): one point per attacked text and arm
    for name in ("uat", "hotflip"):
        logged = [json.loads(line) for line in (repo / f"reports/monotonic/{name}.jsonl").read_text().splitlines()]
        for arm in ("baseline", "monotonic"):
            points = json.loads((repo / f"reports/plots/monotonic/{name}/{arm}.json").read_text())
            assert [p["attacked_nll"] for p in points] == [r["attacked_nll"] for r in logged if r["model"] == arm]
    # the DVCLive curves are cache: false outs now: no DVC-made .gitignore hides them from git
    assert not (repo / "dvclive/monotonic/.gitignore").exists()
