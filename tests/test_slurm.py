"""The SLURM templates (slurm/*.sbatch), run as SLURM would run them, 2 array tasks at once, minus SLURM.

Each template's body is run with ``bash`` (``#SBATCH`` lines are comments) and the ``SLURM_*``
variables a job array sets, in a tiny DVC repository with a committed baseline run: a
sweep-independent ``pretrain`` stage and a params-dependent ``train`` stage that counts steps into a
``persist: true`` checkpoint dir and resumes from it when the params match (as lmlab.resume does).
What this covers: the DVC mechanics of the templates (sweep-line selection, per-task clones sharing
one cache and starting from the baseline's outputs, concurrent tasks on one shared checkout, queue
draining by uniquely named foreground workers that exit when the queue is empty, requeue on the
time-limit signal through ``scontrol``, resume from the checkpoint left by a killed attempt,
experiments listed by ``dvc exp show`` in the shared checkout).
What it does not cover: a real scheduler (``sbatch`` options, ``--signal`` delivery, the cgroup kill,
a shared filesystem across nodes, NFS locking), GPUs, and lmlab's own training stages (their
resume from a checkpoint dir is ``tests/test_resume.py``'s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import dvc_env, run

pytestmark = pytest.mark.slow

TEMPLATES = Path(__file__).resolve().parents[1] / "slurm"

TRAIN = '''"""Counts to `steps` into ckpt/state, resuming only a run of the same params (as lmlab.resume does)."""
import json, os, time, yaml
p = yaml.safe_load(open("params.yaml"))
run = f"x={p['x']},steps={p['steps']}"
os.makedirs("ckpt", exist_ok=True)
state = open("ckpt/state").read().split() if os.path.exists("ckpt/state") else []
start = int(state[1]) if state and state[0] == run else 0
for step in range(start, p["steps"]):
    time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
    open("ckpt/state", "w").write(f"{run} {step + 1}")
os.makedirs("model", exist_ok=True)
open("model/w.txt", "w").write(str(p["x"] * 2) + open("base/w.txt").read())
json.dump({"y": p["x"] * 2, "resumed_from": start}, open("metrics.json", "w"))
'''

PRETRAIN = '''"""A base model independent of the sweep (as mono_pretrain): counts its runs in RUNS_LOG."""
import os
os.makedirs("base", exist_ok=True)
open("base/w.txt", "w").write("base")
open(RUNS_LOG, "a").write("ran\\n")
'''

DVC_YAML = """stages:
  pretrain:
    cmd: python pretrain.py
    deps: [pretrain.py]
    outs:
      - base:
          persist: true
          push: false
  train:
    cmd: python train.py
    deps: [train.py, base]
    params: [x, steps]
    outs:
      - model
      - ckpt:
          persist: true
          push: false
    metrics:
      - metrics.json:
          cache: false
"""


@pytest.fixture()
def shared_checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "shared"
    repo.mkdir()
    (repo / "params.yaml").write_text("x: 1\nsteps: 3\n")
    (repo / "train.py").write_text(TRAIN)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "pretrain.py").write_text(f"RUNS_LOG = {str(tmp_path / 'pretrain_runs.log')!r}\n{PRETRAIN}")
    (repo / "sweep.txt").write_text("# name overrides\nfast-a x=2\n\nslow-b x=3 steps=40\n")
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "repro"], repo)  # the baseline: dvc.lock and metrics.json committed, as lmlab's
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "tiny pipeline"], repo)
    return repo


def _task(template: str, repo: Path, job: int, task: int, log: Path, **env: str) -> subprocess.Popen:
    """Start ``bash slurm/<template>`` as array task ``job_task`` (own session, as SLURM's cgroup)."""
    full = dvc_env()
    full.update(SLURM_SUBMIT_DIR=str(repo), SLURM_ARRAY_JOB_ID=str(job), SLURM_JOB_ID=str(job + 1 + task),
                SLURM_ARRAY_TASK_ID=str(task), SLURM_RESTART_COUNT="0")
    full.update(env)
    with open(log, "wb") as handle:
        return subprocess.Popen(["bash", str(TEMPLATES / template)], cwd=repo, env=full, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _experiments(repo: Path) -> dict[str, tuple[dict, dict]]:
    """``dvc exp show`` of the shared checkout: name -> (params, metrics)."""
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            data = exp["revs"][0]["data"]
            found[exp["name"]] = (data["params"]["params.yaml"]["data"], data["metrics"]["metrics.json"]["data"])
    return found


def _wait(proc: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    assert proc.wait(timeout=timeout) == 0, log.read_text()
    return log.read_text()


def test_exp_array_runs_tasks_at_once_and_a_requeued_task_resumes(shared_checkout: Path, tmp_path: Path) -> None:
    repo = shared_checkout
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (fake / "scontrol").chmod(0o755)
    env = {"LMLAB_SWEEP": "sweep.txt", "PATH": f"{fake}{os.pathsep}{dvc_env()['PATH']}", "STEP_SLEEP": "0.25"}
    logs = [tmp_path / "task0.out", tmp_path / "task1.out"]
    t0 = time.monotonic()
    fast = _task("exp_array.sbatch", repo, 500, 0, logs[0], **env)
    slow = _task("exp_array.sbatch", repo, 500, 1, logs[1], **env)
    state = repo / ".dvc/tmp/slurm/500_1/ckpt/state"

    def steps_done() -> int:
        text = state.read_text().split() if state.is_file() else []
        return int(text[1]) if len(text) == 2 and text[0] == "x=3,steps=40" else 0

    while steps_done() < 3:
        assert slow.poll() is None and time.monotonic() - t0 < 240, logs[1].read_text()
        time.sleep(0.2)
    os.kill(slow.pid, signal.SIGUSR1)  # SLURM's --signal=B:USR1@900: the time limit is near
    deadline = time.monotonic() + 30
    while not (tmp_path / "scontrol.log").is_file():
        assert time.monotonic() < deadline, logs[1].read_text()
        time.sleep(0.1)
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "500_1"]
    os.killpg(slow.pid, signal.SIGKILL)  # what `scontrol requeue` then does to the running job
    slow.wait()
    killed_at = steps_done()
    assert 3 <= killed_at < 40
    _wait(fast, logs[0])
    first_round = time.monotonic() - t0

    requeued = _task("exp_array.sbatch", repo, 500, 1, tmp_path / "task1-attempt2.out",
                     **{**env, "SLURM_RESTART_COUNT": "1", "STEP_SLEEP": "0"})
    out = _wait(requeued, tmp_path / "task1-attempt2.out")
    assert "attempt 2" in out
    exps = _experiments(repo)
    assert exps["fast-a"] == ({"x": 2, "steps": 3}, {"y": 4, "resumed_from": 0})
    params, metrics = exps["slow-b"]
    assert params == {"x": 3, "steps": 40} and metrics["y"] == 6
    assert metrics["resumed_from"] >= killed_at  # resumed from the killed attempt's checkpoint
    # the clones got the baseline's outputs from the shared cache: the sweep-independent stage with
    # a persist out (which DVC's run-cache never restores) ran once, for the baseline, and not per task
    assert (tmp_path / "pretrain_runs.log").read_text() == "ran\n"
    print(f"exp_array: 2 tasks at once + kill {first_round:.1f} s, requeued attempt "
          f"{time.monotonic() - t0 - first_round:.1f} s")


def test_queue_workers_drain_one_shared_queue_and_exit(shared_checkout: Path, tmp_path: Path) -> None:
    repo = shared_checkout
    (repo / "qsweep.txt").write_text("q-a x=5\nq-b x=6\n")
    run(["git", "add", "qsweep.txt"], repo)
    run(["git", "commit", "-q", "-m", "queue sweep"], repo)
    run(["bash", str(TEMPLATES / "enqueue.sh"), "qsweep.txt"], repo)
    t0 = time.monotonic()
    logs = [tmp_path / "worker0.out", tmp_path / "worker1.out"]
    workers = [_task("queue_worker.sbatch", repo, 600, task, logs[task]) for task in (0, 1)]
    outs = [_wait(proc, log) for proc, log in zip(workers, logs, strict=True)]  # both exit on their own
    elapsed = time.monotonic() - t0
    assert "lmlab-600-0@" in outs[0] and "lmlab-600-1@" in outs[1]  # unique worker names
    ran = [out.count("succeeded in") for out in outs]
    assert sum(ran) == 2, outs
    exps = _experiments(repo)
    for name, x in (("q-a", 5), ("q-b", 6)):
        assert exps[name][1] == {"y": 2 * x, "resumed_from": 0}, exps
    assert (tmp_path / "pretrain_runs.log").read_text() == "ran\n"  # only the baseline ran it
    status = run(["dvc", "queue", "status"], repo).stdout
    assert "Queued" not in status and "Running" not in status and status.count("Success") == 2, status
    print(f"queue_worker: 2 experiments, 2 workers ran {ran}, both exited {elapsed:.1f} s after start")
