"""The README's recovery after a failed `dvc exp run -S gamma=abc`, followed step by step in a repository copy.

Lean on purpose: only `check_params` and the cheapest data stage (`wl_sample`) ever run.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import copy_repository, run

OUTS = ["data/weighted/sample/pool.jsonl", "data/weighted/sample/test.jsonl"]


@pytest.mark.slow
def test_a_bad_set_value_fails_first_with_exit_2_and_the_readme_steps_restore_the_workspace(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    run(["dvc", "repro", "wl_sample"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "wl_sample"], repo)
    committed = {name: (repo / name).read_bytes() for name in [*OUTS, "params.yaml"]}
    gamma_line = next(i for i, line in enumerate((repo / "params.yaml").read_text().splitlines(), 1)
                      if line.startswith("gamma:"))

    started = time.monotonic()
    failed = run(["dvc", "exp", "run", "-S", "gamma=abc"], repo, check=False)
    elapsed = time.monotonic() - started
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "failed to reproduce 'check_params'" in output and "exited with 2" in output, output
    errors = [line for line in output.splitlines() if " ERROR " in line and "[check_params]" in line]
    assert len(errors) == 1 and f"params.yaml:{gamma_line}:1, key 'gamma': expected a number, got 'abc'" in errors[0], output
    assert "Traceback" not in output and "Running stage 'wl_sample'" not in output
    assert elapsed < 120  # the stage itself takes ~1 s; the rest is DVC (and this machine's load)
    # what the README says is left behind: the -S value in params.yaml, the outputs untouched, no experiment
    assert "gamma: abc" in (repo / "params.yaml").read_text()
    assert all((repo / name).read_bytes() == committed[name] for name in OUTS)
    assert run(["dvc", "exp", "list", "--name-only"], repo).stdout.strip() == ""

    run(["git", "checkout", "params.yaml"], repo)
    run(["dvc", "checkout"], repo, check=False)  # warns about the outputs this copy never produced
    assert (repo / "params.yaml").read_bytes() == committed["params.yaml"]
    status = run(["dvc", "status", "check_params", "wl_sample"], repo)
    assert "Data and pipelines are up to date." in status.stdout, status.stdout
