"""lmlab.report.seeds: spread across seeds, sign agreement of conclusions, reading `dvc exp show --json`."""

from __future__ import annotations

import math

import pytest

from lmlab.report.seeds import (
    CONCLUSIONS,
    SeedRun,
    conclusion_agreement,
    headline_spread,
    render_seed_report,
    runs_from_exp_show,
)


def run_ok(seed: int, gain_a1: float, causal: float, attack: float) -> SeedRun:
    return SeedRun(f"exp-{seed}", seed, {
        "ilm": {"specialization_gain": {"A1": gain_a1}},
        "ensemble": {"accuracy": {"causal": causal, "seq2seq": 0.8}},
        "monotonic": {"attack_reduction_pct": attack, "ppl_gap_pct": 3.0},
    })


RUNS = [run_ok(0, 0.70, 0.84, -7.0), run_ok(1, 0.60, 0.78, 4.0), run_ok(2, 0.65, 0.90, 10.0)]


def test_spread_is_mean_std_and_a_t_interval_across_runs():
    (row,) = headline_spread(RUNS, {"ilm": ["specialization_gain.A1"]})
    assert row["n"] == 3 and row["mean"] == pytest.approx(0.65) and row["std"] == pytest.approx(0.05)
    half = 4.302652729911275 * 0.05 / math.sqrt(3)  # t(0.975, 2)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.65 - half), pytest.approx(0.65 + half))
    assert (row["min"], row["max"]) == (0.60, 0.70)


def test_spread_of_a_single_run_has_no_interval_and_missing_keys_are_skipped():
    (row,) = headline_spread(RUNS[:1], {"ilm": ["specialization_gain.A1"]})
    assert row["n"] == 1 and math.isnan(row["std"]) and math.isnan(row["ci_low"])
    (missing,) = headline_spread(RUNS, {"ilm": ["specialization_gain.B2"]})
    assert missing["n"] == 0 and missing["values"] == []


def test_conclusions_report_whether_every_seed_agrees():
    rows = {row["claim"]: row for row in conclusion_agreement(RUNS)}
    assert rows["specialization helps at A1 (gain > 0)"]["verdict"] == "holds in every run"
    beats = rows["the causal model beats the seq2seq model (accuracy difference > 0)"]
    assert beats["verdict"] == "mixed: holds in 2 of 3" and not beats["robust"]
    assert beats["values"] == [pytest.approx(0.04), pytest.approx(-0.02), pytest.approx(0.10)]
    assert rows["the monotone model is more robust (attack reduction > 0)"]["holds"] == 2
    assert rows["monotonicity costs perplexity (gap > 0)"]["robust"]
    assert rows["specialization helps at B1 (gain > 0)"]["verdict"] == "not measured"
    assert len(rows) == len(CONCLUSIONS)


def test_runs_are_read_from_exp_show_json():
    def node(name, seed, gain):
        return {"rev": name, "name": name, "data": {
            "params": {"params.yaml": {"data": {"seed": seed}}},
            "metrics": {"reports/metrics/ilm.json": {"data": {"specialization_gain": {"A1": gain}}}}}}
    exp_show = [{"rev": "workspace", **node("workspace", 0, 0.7)},
                {"rev": "abc123", **node("abc123", 0, 0.7),
                 "experiments": [{"revs": [node("exp-one", 1, 0.6)]}, {"revs": [node("exp-two", 2, 0.65)]}]}]
    runs = runs_from_exp_show(exp_show)
    assert [(r.name, r.seed) for r in runs] == [("workspace", 0), ("abc123", 0), ("exp-one", 1), ("exp-two", 2)]
    assert runs[2].metrics == {"ilm": {"specialization_gain": {"A1": 0.6}}}


def test_report_lists_runs_spread_and_verdicts():
    spread = headline_spread(RUNS, {"ilm": ["specialization_gain.A1"], "monotonic": ["attack_reduction_pct"]})
    text = render_seed_report(RUNS, spread, conclusion_agreement(RUNS))
    assert "`exp-1` (seed 1)" in text and "## ilm" in text and "## monotonic" in text
    assert "| `specialization_gain.A1` | 0.650 | 0.050 | 0.600 | 0.700 |" in text
    assert "mixed: holds in 2 of 3" in text


@pytest.mark.slow
def test_lab_seeds_and_sweep_run_queued_experiments_and_aggregate_them(tmp_path, repo_root):
    """`scripts/lab seeds 3 wl_eval` and `scripts/lab sweep` at tiny scale, as the README gives them."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import copy_repository
    from tests.weighted.helpers import CONFIGS, SMALL, family_dvc_yaml, run_ok

    work = copy_repository(tmp_path / "repo", {**SMALL, "weighted.configs": CONFIGS},
                           files=("src", "stages", "scripts", "pyproject.toml", "params.yaml"))
    (work / "dvc.yaml").write_text(family_dvc_yaml(repo_root))
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])  # scripts/lab finds its environment installed
    env = {**os.environ, "PYTHONPATH": str(work / "src"), "DVC_NO_ANALYTICS": "1", "LMLAB_PROGRESS": "0",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "weighted stages"], work, env)
    run_ok(["scripts/lab", "repro"], work, env)
    run_ok(["git", "add", "-A"], work, env)
    run_ok(["git", "commit", "-qm", "seed 0 results"], work, env)

    bad = subprocess.run(["scripts/lab", "seeds", "1"], cwd=work, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "N must be a number >= 2" in bad.stderr
    run_ok(["scripts/lab", "seeds", "3", "wl_eval"], work, env)
    report = json.loads((work / "reports/seeds.json").read_text())
    assert sorted(run["seed"] for run in report["runs"]) == [0, 1, 2]
    acceptance = next(r for r in report["headlines"] if r["key"] == "odds_1_2-accept.acceptance_rate")
    assert acceptance["n"] == 3 and len(acceptance["values"]) == 3  # one value from each seed's own run
    weighted = [c for c in report["conclusions"] if c["family"] == "weighted" and c["n"] == 3]
    assert weighted, report["conclusions"]
    assert "## weighted" in (work / "reports/seeds.md").read_text()

    # the weighted sweep as one command: gamma 8.0 at seed 0 next to the committed gamma 4.0
    run_ok(["scripts/lab", "sweep", "8.0", "0"], work, env)
    sweep = json.loads((work / "reports/weighted/sweep.json").read_text())
    gammas = {(run["config"], run["gamma"], run["seed"]) for run in sweep["runs"]}
    assert ("odds_1_2-accept", 8.0, 0) in gammas and ("odds_1_2-accept", 4.0, 0) in gammas
    assert sweep["monotonicity"]["n_groups"] >= 1
