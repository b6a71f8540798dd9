"""The README's daily loop and experiment commands, run as written on a small copy of the repository.

The README is the source: the blocks of its "The daily loop" and "Experiments at scale" sections
are fenced as ```` ```bash tested ```` and :func:`readme_commands` extracts their command lines, so
README and test cannot drift. The slow test runs every line, in order, with bash, in a clone of a
weighted-family-only copy (tests/weighted/helpers.py: a few training steps) whose results were
pushed to a local DVC remote, then checks what each line's comment promises: an up-to-date
`dvc repro`, `-S gamma=4` re-running only the gamma-weighted model and `wl_eval`, metrics that fit
a terminal, the `gamma` column in the `exp show` recipe, an applied experiment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_repository
from tests.weighted.helpers import CONFIGS, SMALL, family_dvc_yaml, run_ok

TESTED = re.compile(r"^```bash tested\n(.*?)^```", re.M | re.S)
SECTIONS = ("## The daily loop", "## Experiments at scale")
TERMINAL = 120  # columns: the README's commands must fit an 80-120 column terminal


def readme_commands(readme: str) -> list[str]:
    """The command lines of the README's ```` ```bash tested ```` blocks, in order (comment lines dropped)."""
    return [line for block in TESTED.findall(readme) for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _section(readme: str, title: str) -> str:
    start = readme.index(title)
    end = readme.find("\n## ", start + len(title))
    sub = readme.find("\n### ", start + len(title))
    return readme[start:min(i for i in (end, sub, len(readme)) if i > 0)]


def test_the_readme_marks_its_daily_loop_and_experiment_blocks_as_tested() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for title in SECTIONS:  # no untested command block in these sections
        body = _section(readme, title)
        assert "```bash tested\n" in body and "```bash\n" not in body, title
    commands = readme_commands(readme)
    experiments = [c for c in commands if c.startswith("dvc exp run -S ")]
    assert experiments[0].split("#")[0].split() == ["dvc", "exp", "run", "-S", "gamma=4"]  # the first example
    assert any(c.startswith("dvc exp show") for c in commands)
    # ... and it is a real experiment: the committed default is another gamma
    assert yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["gamma"] != 4


def test_only_the_gamma_weighted_models_and_their_evaluation_read_gamma() -> None:
    """The README's claim for the whole pipeline: `-S gamma=4` re-trains the 8 swept models, then wl_eval."""
    from dvc.repo import Repo

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    swept = {f"wl_train@{name}" for name, cfg in params["weighted"]["configs"].items()
             if cfg.get("gamma_key", "gamma") == "gamma"}
    with Repo(str(REPO_ROOT)) as repo:
        readers = {stage.addressing for stage in repo.index.stages
                   for dep in stage.deps if getattr(dep, "params", None) is not None and "gamma" in dep.params}
    assert len(swept) == 8 and readers == swept | {"wl_eval"}


def _env(work: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(work / "src"), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "LMLAB_PROGRESS": "0",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t"}


def _ran(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def _widest(out: str) -> int:
    return max((len(line) for line in out.splitlines()), default=0)


def _experiment_at(work: Path, env: dict[str, str], gamma: float) -> str:
    """The name of the experiment that ran at ``gamma`` (what a reader picks from the `exp show` table)."""
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], cwd=work, env=env, capture_output=True,
                                      text=True, check=True).stdout)
    for commit in shown:
        for exp in commit.get("experiments") or []:
            data = exp["revs"][0].get("data") or {}
            value = (((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}).get("gamma")
            if value is not None and float(value) == gamma and exp.get("name"):
                return exp["name"]
    raise AssertionError(f"no experiment at gamma {gamma}")


@pytest.mark.slow
def test_readme_commands_do_what_they_say(tmp_path: Path, repo_root: Path) -> None:
    # The "team" repository: the weighted family at a few steps, run once and pushed (the committed
    # default gamma, whatever params.yaml says). Its DVC cache is shared with the clone, as on a
    # cluster (`dvc cache dir`), so runs already made there come from the run-cache.
    small = {**{k: v for k, v in SMALL.items() if k != "gamma"}, "weighted.configs": CONFIGS}
    origin = copy_repository(tmp_path / "origin", small,
                             files=("src", "stages", "scripts", "pyproject.toml", "params.yaml"))
    (origin / "dvc.yaml").write_text(family_dvc_yaml(repo_root))
    env = _env(origin)
    run_ok(["git", "add", "-A"], origin, env)
    run_ok(["git", "commit", "-qm", "weighted stages"], origin, env)
    run_ok(["dvc", "repro"], origin, env)
    run_ok(["git", "add", "-A"], origin, env)
    run_ok(["git", "commit", "-qm", "results"], origin, env)
    run_ok(["dvc", "push"], origin, env)
    work = tmp_path / "work"
    run_ok(["git", "clone", "-q", str(origin), str(work)], tmp_path, env)
    run_ok(["dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote")], work, env)
    run_ok(["dvc", "cache", "dir", "--local", str(origin / ".dvc" / "cache")], work, env)
    env = _env(work)
    before = json.loads((work / "reports/metrics/weighted.json").read_text())

    out: dict[str, str] = {}
    for command in readme_commands((repo_root / "README.md").read_text()):
        if "<exp>" in command:
            command = command.replace("<exp>", _experiment_at(work, env, 8.0))
        start = time.monotonic()
        out[command.split("#")[0].strip()] = run_ok(["bash", "-c", command], work, env)
        print(f"{time.monotonic() - start:6.1f} s  {command[:90]}")  # where the time goes (pytest -s)

    def said(prefix: str) -> str:
        return next(text for command, text in out.items() if command.startswith(prefix))

    assert "Data and pipelines are up to date." in said("dvc repro")
    assert _ran(said("dvc exp run -S gamma=4")) == {"check_params", "wl_train@odds_1_2-accept", "wl_eval"}  # baseline, data cached
    listing = said("python scripts/metrics_show.py")
    assert _widest(listing) <= 100 and re.search(r"odds_1_2-accept\.acceptance_rate .*\[", listing), listing
    diff = said("dvc metrics diff")
    assert "odds_1_2-accept.gamma" in diff and _widest(diff) <= TERMINAL, diff
    assert (work / "dvc_plots" / "index.html").is_file()
    dag = said("dvc dag --collapse-foreach-matrix wl_eval")
    assert "wl_train" in dag and "@" not in dag and _widest(dag) <= TERMINAL, dag
    assert said("dvc exp run --queue").count("Queued experiment") == 3
    table = said("dvc exp show")
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header == ["Experiment", "odds_1_2-accept.acceptance_rate", "gamma"], table
    gammas = {float(row.strip("|").split("|")[-1]) for row in table.splitlines()[2:] if row.startswith("|")}
    assert gammas == {2.0, 4.0, 8.0} and _widest(table) <= TERMINAL, table
    # the apply line: the workspace is the gamma 8 experiment, committed
    assert yaml.safe_load((work / "params.yaml").read_text())["gamma"] == 8.0
    assert run_ok(["git", "log", "-1", "--format=%s"], work, env).startswith("promote ")
    after = json.loads((work / "reports/metrics/weighted.json").read_text())
    assert after["odds_1_2-baseline"] == before["odds_1_2-baseline"]  # gamma 1 model: never re-trained
    assert (before["odds_1_2-accept"]["gamma"], after["odds_1_2-accept"]["gamma"]) == (
        float(yaml.safe_load((repo_root / "params.yaml").read_text())["gamma"]), 8.0)
    assert "gamma" not in after  # the swept value is the param (the `exp show` column `gamma`), not a metric
    assert run_ok(["git", "status", "--porcelain"], work, env) == ""
