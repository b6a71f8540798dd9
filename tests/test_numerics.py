"""lmlab.numerics: the pinned environment, its check, and identical weights on emulated machines.

The emulation test is the evidence that the committed lock reproduces on another x86-64 CPU: one
tiny training stage (``wl_train``, the one training loop) runs in fresh processes under emulated
machines and must give byte-identical weights with the pin, while the same machines give
different weights without it (so the emulation is real and the test can fail).

Emulated machines (this is what the pin must withstand):
- another ISA: an AVX2-only CPU (ATen, oneDNN and MKL capped at AVX2 by their own variables);
- another vendor: MKL's Intel code path, by an ``LD_PRELOAD`` shim that answers MKL's vendor
  query with "Intel" (MKL is linked statically into the torch wheel; needs a C compiler);
- another core count: one core (``taskset -c 0``), where unpinned torch runs one thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab import numerics
from tests.conftest import REPO_ROOT

SHIM = """
int mkl_serv_intel_cpu_true(void) { return 1; }
int mkl_serv_intel_cpu(void) { return 1; }
int mkl_serv_cpuiszen(void) { return 0; }
"""
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PIN_VARIABLES = ("ATEN_", "MKL_", "ONEDNN_", "OMP_", "LMLAB_FAST_NUMERICS", "LMLAB_NUM_THREADS", "LD_PRELOAD")


def test_pinned_environment_fixes_isa_mkl_branch_and_threads():
    env = numerics.pinned_environment({})
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "COMPATIBLE"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == str(numerics.DEFAULT_THREADS)


@pytest.mark.parametrize("value", ["1", "true", "ON"])
def test_fast_numerics_turns_the_pin_off(value):
    environ = {"LMLAB_FAST_NUMERICS": value, "OMP_NUM_THREADS": "7"}
    assert numerics.pinned_environment(environ) == {}
    assert numerics.pin_environment(environ) == {} and environ["OMP_NUM_THREADS"] == "7"


def test_pin_environment_overrides_and_reports_conflicting_values():
    environ = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "COMPATIBLE"}
    overridden = numerics.pin_environment(environ)
    assert overridden == {"ATEN_CPU_CAPABILITY": "avx512"}
    assert environ["ATEN_CPU_CAPABILITY"] == "avx2"


def test_threads_are_shared_between_the_processes_of_a_node():
    assert numerics.pinned_threads({"LMLAB_NUM_THREADS": "4"}) == 4
    assert numerics.pinned_threads({"LMLAB_NUM_THREADS": "4", "LOCAL_WORLD_SIZE": "2"}) == 2
    assert numerics.pinned_threads({"LOCAL_WORLD_SIZE": "4"}) == 1
    with pytest.raises(ValueError, match="LMLAB_NUM_THREADS='zero'"):
        numerics.pinned_threads({"LMLAB_NUM_THREADS": "zero"})


def _python(code: str, env_add: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PIN_VARIABLES)}
    env.update(env_add or {})
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO_ROOT)


def test_importing_lmlab_pins_this_process():
    done = _python("import lmlab, torch\nfrom lmlab.numerics import check_pin\ns = check_pin()\n"
                   "print(s.cpu_capability, s.mkl_branch, s.threads)")
    assert done.returncode == 0, done.stderr
    capability, branch, threads = done.stdout.split()
    assert capability in {"AVX2", "DEFAULT"} and branch in {"3", "None"} and threads == "2"


def test_check_pin_refuses_a_process_where_torch_computed_first():
    if numerics.platform.machine().lower() not in {"x86_64", "amd64"}:
        pytest.skip("the pin's ISA check is x86-64 only")
    probe = _python("import torch\nprint(torch.backends.cpu.get_cpu_capability())")
    if probe.stdout.strip() in {"AVX2", "DEFAULT"}:
        pytest.skip("this CPU has no AVX-512: torch computing early gives the pinned kernels anyway")
    done = _python("import torch\ntorch.ones(3) + 1\nimport lmlab\nfrom lmlab.numerics import check_pin\ncheck_pin()")
    assert done.returncode != 0 and "numerics pin is not in force" in done.stderr


# ---------------------------------------------------------------- emulated machines (slow)


def _machines(tmp_path: Path) -> dict[str, tuple[dict[str, str], list[str]]]:
    one_core = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    machines = {"native": ({}, []), "avx2-only, 1 core": (dict(AVX2_ONLY), one_core)}
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler:
        source, shim = tmp_path / "intel_shim.c", tmp_path / "intel_shim.so"
        source.write_text(SHIM)
        subprocess.run([compiler, "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
        machines["intel dispatch"] = ({"LD_PRELOAD": str(shim)}, [])
        machines["intel avx2-only, 1 core"] = ({"LD_PRELOAD": str(shim), **AVX2_ONLY}, one_core)
    return machines


def _train_weights(tmp_path: Path, params: Path, run: str, env_add: dict[str, str], prefix: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PIN_VARIABLES)}
    env.update(env_add)
    out = tmp_path / "runs" / run
    command = [*prefix, sys.executable, str(REPO_ROOT / "stages" / "wl_train.py"), "--params", str(params),
               "--config", "odds_1_2-baseline", "--train", str(tmp_path / "sets" / "odds_1_2.jsonl"),
               "--tokenizer", str(tmp_path / "tok"), "--out", str(out / "model"),
               "--checkpoints", str(out / "checkpoints")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, f"{run}: {done.stderr[-3000:]}"
    return hashlib.sha256((out / "model" / "model.safetensors").read_bytes()).hexdigest()[:16]


@pytest.mark.slow
def test_one_training_stage_gives_identical_weights_on_emulated_machines(tmp_path):
    from stages.tokenizer import main as tokenizer
    from stages.wl_data import main as data
    from stages.wl_sample import main as sample
    from tests.weighted.helpers import tiny_params

    configs = {"odds_1_2-baseline": {"set": "odds_1_2", "variant": "accept", "gamma_key": "weighted.baseline_gamma"}}
    params = tiny_params(tmp_path, configs=configs, training__max_steps=8, training__save_steps=8,
                         model__d_model=64, model__d_ff=256, runtime__cpu_threads=0)
    pool, test = tmp_path / "pool.jsonl", tmp_path / "test.jsonl"
    assert sample(["--params", str(params), "--pool", str(pool), "--test", str(test)]) == 0
    assert data(["--params", str(params), "--pool", str(pool), "--test", str(test), "--out", str(tmp_path / "sets")]) == 0
    assert tokenizer(["--params", str(params), "--section", "weighted", "--corpus", str(pool),
                      "--out", str(tmp_path / "tok")]) == 0

    machines = _machines(tmp_path)
    pinned = {name: _train_weights(tmp_path, params, f"pinned-{i}", env, prefix)
              for i, (name, (env, prefix)) in enumerate(machines.items())}
    fast = {name: _train_weights(tmp_path, params, f"fast-{i}", {**env, "LMLAB_FAST_NUMERICS": "1"}, prefix)
            for i, (name, (env, prefix)) in enumerate(machines.items())}
    assert len(set(fast.values())) > 1, f"the emulated machines do not differ without the pin: {fast}"
    assert len(set(pinned.values())) == 1, f"pinned weights differ between emulated machines: {pinned}"
