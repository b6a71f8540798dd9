"""Progress lines (lmlab.pipeline_progress): a stage's place in DVC's plan and the last run's times of the rest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from lmlab import pipeline_progress as progress
from tests.conftest import REPO_ROOT

PLAN = ["check_params", "ilm_sample", "ilm_train@A1", "report"]


def test_the_line_counts_the_stage_and_sums_the_rest() -> None:
    times = {"ilm_train@A1": 100.0, "report": 20.0, "ilm_sample": 3.0}
    assert progress.describe("ilm_sample", PLAN, times) == (
        "stage 2 of 4: ilm_sample; the 2 stages after it took ~2 min last time (DVC skips unchanged ones)")
    assert progress.describe("check_params", PLAN, {"report": 20.0}) == (
        "stage 1 of 4: check_params; 3 stages after it: ~20 s for the 1 timed here before, 2 never run here")
    assert progress.describe("ilm_train@A1", PLAN, {}) == (
        "stage 3 of 4: ilm_train@A1; 1 stages after it, none timed here yet")
    assert progress.describe("report", PLAN, times) == "stage 4 of 4: report, the last one"
    assert progress.describe("not_a_stage", PLAN, times) is None


def test_the_latest_successful_time_of_each_stage_counts(tmp_path: Path) -> None:
    path = tmp_path / "times.jsonl"
    rows = [{"stage": "a", "status": "ok", "startup_s": 1.0, "work_s": 2.0},
            {"stage": "a", "status": "ok", "startup_s": 1.0, "work_s": 9.0},
            {"stage": "a", "status": "crashed", "startup_s": 1.0, "work_s": 0.5},
            {"stage": "b", "status": "input error", "startup_s": 1.0, "work_s": 0.1}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    assert progress.last_times(path) == {"a": 10.0}
    assert progress.last_times(tmp_path / "missing.jsonl") == {}


def test_a_stage_under_dvc_records_its_time_and_announces_its_place(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_STAGE", "ilm_sample")
    cache = tmp_path / progress.PROGRESS_DIR / progress.PLAN_FILE
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"key": progress._plan_key(tmp_path), "stages": PLAN}))
    progress.record({"stage": "report", "status": "ok", "startup_s": 1.0, "work_s": 29.0})
    with caplog.at_level(logging.INFO, logger="lmlab.stage"):
        progress.announce("ilm_sample")
    assert "stage 2 of 4: ilm_sample; 2 stages after it: ~30 s for the 1 timed here before, 1 never run here" \
        in caplog.text
    (tmp_path / "params.yaml").write_text("seed: 1\n")  # the plan is keyed by dvc.yaml + params.yaml
    monkeypatch.setattr(progress, "pipeline_plan", lambda root: (_ for _ in ()).throw(RuntimeError("no dvc")))
    caplog.clear()
    progress.announce("ilm_sample")  # never fails the stage
    assert "stage 2" not in caplog.text


def test_outside_dvc_nothing_is_announced_or_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    progress.record({"stage": "x", "status": "ok", "startup_s": 1, "work_s": 1})
    progress.announce("x")
    assert not (tmp_path / progress.PROGRESS_DIR).exists()


@pytest.mark.slow
def test_the_plan_is_dvcs_order_for_the_whole_pipeline() -> None:
    plan = progress.pipeline_plan(REPO_ROOT)
    assert plan[0] == "check_params" and plan[-1] == "report"
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    # every instance once (foreach over an empty list, e.g. ilm.transfer.levels: [], has none)
    assert {name.split("@")[0] for name in plan} <= set(stages) and len(plan) == len(set(plan)) > 40
    assert plan.index("ilm_mask@B2") < plan.index("ilm_train@B2") < plan.index("ilm_eval")
    assert progress.pipeline_plan(REPO_ROOT) == plan  # from the cache
