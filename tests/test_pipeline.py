"""The DVC pipeline as users drive it: push/pull, no-op repro, metrics diff, queues, determinism.

Each test works in a throw-away copy of the repository (tests/conftest.py:copy_repository) with
its own DVC remote, on the cheap data stages of the ILM family, shrunk by params overrides.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.conftest import copy_repository, run, write_params

pytestmark = pytest.mark.slow

SMALL = {"ilm.sample.n_documents": 1500}
DATA_STAGES = ["ilm_split"]


def _md5_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def pipeline(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    return copy_repository(repo, SMALL)


def test_push_clone_pull_then_repro_is_a_noop(pipeline: Path, tmp_path: Path) -> None:
    run(["dvc", "repro", *DATA_STAGES], pipeline)
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-q", "-m", "results"], pipeline)
    run(["dvc", "push"], pipeline)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline), str(clone)], tmp_path)
    run(["dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote")], clone)
    run(["dvc", "pull", "--with-deps", *DATA_STAGES], clone)
    out = run(["dvc", "repro", *DATA_STAGES], clone).stdout
    assert "Running stage" not in out and "up to date" in out, out
    status = run(["dvc", "status", *DATA_STAGES], clone).stdout
    assert "up to date" in status, status
    assert run(["git", "status", "--porcelain"], clone).stdout == ""
    assert _md5_tree(clone / "data" / "ilm" / "splits") == _md5_tree(pipeline / "data" / "ilm" / "splits")


def test_metrics_diff_between_two_commits_lists_changed_keys(pipeline: Path) -> None:
    run(["dvc", "repro", *DATA_STAGES], pipeline)
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-q", "-m", "seed 0"], pipeline)
    run(["dvc", "exp", "run", *DATA_STAGES, "-S", "ilm.sample.n_documents=1700"], pipeline)
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-q", "-m", "more documents"], pipeline)
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD~1", "HEAD", "--json"], pipeline).stdout)
    changed = diff["reports/metrics/ilm_split.json"]
    assert any(key.startswith("counts") or "count" in key for key in changed), changed
    md = run(["dvc", "metrics", "diff", "HEAD~1", "HEAD", "--md"], pipeline).stdout
    assert "reports/metrics/ilm_split.json" in md


def test_repro_force_is_byte_identical(pipeline: Path) -> None:
    run(["dvc", "repro", *DATA_STAGES], pipeline)
    lock = (pipeline / "dvc.lock").read_text()
    first = _md5_tree(pipeline / "data")
    run(["dvc", "repro", "-f", *DATA_STAGES], pipeline)
    assert _md5_tree(pipeline / "data") == first
    assert (pipeline / "dvc.lock").read_text() == lock


def test_queue_two_workers_match_sequential_runs(pipeline: Path) -> None:
    for seed in (1, 2):
        run(["dvc", "exp", "run", "--queue", *DATA_STAGES, "-S", f"seed={seed}", "-n", f"q-seed{seed}"], pipeline)
    run(["dvc", "queue", "start", "-j", "2"], pipeline)
    deadline = time.monotonic() + 900
    while True:  # wait for both workers to finish
        status = run(["dvc", "queue", "status"], pipeline).stdout
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(3)
    assert status.count("Success") == 2, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], pipeline).stdout)

    def metrics_of(name: str) -> dict:
        for commit in shown:
            for exp in commit.get("experiments") or []:
                if exp.get("name") == name:
                    rev = exp["revs"][0]
                    return rev["data"]["metrics"]["reports/metrics/ilm_split.json"]["data"]
        raise AssertionError(f"experiment {name} not found")

    queued = {seed: metrics_of(f"q-seed{seed}") for seed in (1, 2)}
    assert queued[1] != queued[2]
    for seed in (1, 2):
        run(["dvc", "exp", "run", *DATA_STAGES, "-S", f"seed={seed}"], pipeline)
        sequential = json.loads((pipeline / "reports" / "metrics" / "ilm_split.json").read_text())
        assert sequential == queued[seed]


def test_transfer_stages_exist_only_for_listed_levels(pipeline: Path) -> None:
    """`ilm.transfer.levels` is the switch: empty by default, one train + one eval stage per listed level."""
    from ruamel.yaml import YAML

    def transfer_stages(levels: list[str]) -> list[str]:
        write_params(pipeline / "params.yaml", {"ilm.transfer.levels": levels}, source=pipeline / "params.yaml")
        names = run(["dvc", "stage", "list", "--name-only"], pipeline).stdout.split()
        return sorted(n for n in names if "transfer" in n)

    assert transfer_stages([]) == []
    assert transfer_stages(["B1", "C1"]) == ["ilm_eval_transfer@B1", "ilm_eval_transfer@C1",
                                             "ilm_train_transfer@B1", "ilm_train_transfer@C1"]
    # adding a level leaves the other levels' stages cached: none of them reads the list itself
    stages = YAML(typ="safe").load((pipeline / "dvc.yaml").read_text())["stages"]
    for name in ("ilm_train_transfer", "ilm_eval_transfer"):
        tracked = stages[name]["do"]["params"]
        assert not any(p in ("ilm", "ilm.transfer", "ilm.transfer.levels") for p in tracked), tracked
