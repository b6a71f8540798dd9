"""One training stage under ``torchrun`` with 2 CPU processes (gloo) against 1 process.

The cheapest training stage, ``wl_train`` (stages/wl_train.py, a 1-layer GPT-2), is
launched exactly as dvc.yaml does (``scripts/launch`` with ``LMLAB_NUM_PROCESSES=N``: lmlab.launch
-> accelerate config -> torchrun's runner for N > 1, the plain interpreter for N = 1) on a tiny
data set built in-process by the family's own stages. Both runs use the SAME params (batch 8 x
accumulation 2 = a global batch of 16): one process accumulates 2 micro-batches per step, two
processes take one each (lmlab.training.accumulation_for), and accelerate's sharded sampler gives
them the same 16 examples per optimiser step. The runs are not bit-identical: gradients are summed
in another order, and the token-count normalisation of the loss is gathered over ranks instead of
over micro-batches. The test therefore asserts that the two final
models are much closer to each other than either is to a run with another seed, and that only
rank 0 wrote outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT, dvc_env, write_params

pytestmark = pytest.mark.slow

CONFIG = "odds_1_2-baseline"
TINY = {
    "weighted.sample.n_pool": 240,
    "weighted.sample.n_test": 40,
    "weighted.sets.n_rows": 96,
    "weighted.tokenizer.vocab_size": 400,
    "weighted.model.max_positions": 128,
    "weighted.training.max_steps": 12,
    "weighted.training.batch_size": 8,
    "weighted.training.grad_accum": 2,
    "weighted.training.save_steps": 6,
    "weighted.training.logging_steps": 6,
    "weighted.training.eval_steps": 12,
    "weighted.training.warmup_ratio": 0.0,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Decision sample, training sets and tokenizer of the weighted family, from its own stages."""
    from stages import tokenizer, wl_data, wl_sample

    root = tmp_path_factory.mktemp("ddp_inputs")
    params = write_params(root / "params.yaml", TINY)
    p = ["--params", str(params)]
    assert wl_sample.main([*p, "--pool", str(root / "pool.jsonl"), "--test", str(root / "test.jsonl")]) == 0
    assert wl_data.main([*p, "--pool", str(root / "pool.jsonl"), "--test", str(root / "test.jsonl"),
                                    "--out", str(root / "sets")]) == 0
    assert tokenizer.main([*p, "--section", "weighted", "--corpus", str(root / "pool.jsonl"),
                                 "--out", str(root / "tokenizer")]) == 0
    return root


def launch(inputs: Path, run_dir: Path, nproc: int, seed: int = 0,
           launcher: list[str] | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Launch the stage as dvc.yaml does with ``nproc`` processes (or with ``launcher``); the same params for any nproc."""
    run_dir.mkdir()
    overrides = {**TINY, "seed": seed}
    params = write_params(run_dir / "params.yaml", overrides)
    launcher = launcher or [str(REPO_ROOT / "scripts" / "launch")]
    cmd = [*launcher, str(REPO_ROOT / "stages" / "wl_train.py"),
           "--params", str(params), "--config", CONFIG, "--train", str(inputs / "sets" / "odds_1_2.jsonl"),
           "--tokenizer", str(inputs / "tokenizer"), "--out", str(run_dir / "out"),
           "--checkpoints", str(run_dir / "checkpoints"), "--live", str(run_dir / "live"),
           "--eval", str(inputs / "test.jsonl")]  # as dvc.yaml: the eval/decision_nll curve, gathered over ranks
    env = dvc_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["LMLAB_NUM_PROCESSES"] = str(nproc)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return load_weights(run_dir / "out"), proc.stdout + proc.stderr


def load_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    assert files, f"no weights in {model_dir}"
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update(load_file(f))
    return weights


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_two_processes_match_one_process_and_only_rank0_writes(inputs: Path, tmp_path: Path) -> None:
    one, _ = launch(inputs, tmp_path / "one", nproc=1)
    two, log_two = launch(inputs, tmp_path / "two", nproc=2)
    other_seed, _ = launch(inputs, tmp_path / "seed1", nproc=1, seed=1)

    gap = distance(one, two)
    scale = distance(one, other_seed)
    print(f"max |w_1proc - w_2proc| = {gap:.3g}; max |w_seed0 - w_seed1| = {scale:.3g}")
    assert gap < 0.1 * scale, f"1 vs 2 processes differ by {gap:.3g}; another seed differs by {scale:.3g}"
    assert gap < 5e-3, gap

    # One process saved the model (save_model_dir logs once per call; both ranks log to stderr).
    assert log_two.count("saved model to") == 1, log_two[-4000:]
    # Same artifact layout as the 1-process run; no temp leftovers. The only per-rank files are
    # the Trainer's RNG states (rng_state_<rank>.pth instead of rng_state.pth), needed to resume
    # a DDP run exactly.
    assert tree(tmp_path / "two" / "out") == tree(tmp_path / "one" / "out")
    assert tree(tmp_path / "two" / "live") == tree(tmp_path / "one" / "live")
    expected = []
    for name in tree(tmp_path / "one" / "checkpoints"):
        if name.endswith("/rng_state.pth"):
            expected += [name.replace("rng_state.pth", f"rng_state_{rank}.pth") for rank in (0, 1)]
        else:
            expected.append(name)
    assert tree(tmp_path / "two" / "checkpoints") == sorted(expected)
    leftovers = [p for p in (tmp_path / "two").rglob("*") if ".tmp-" in p.name or "rank" in p.name.lower()]
    assert not leftovers, leftovers
    # the unweighted decision NLL is evaluated over the whole eval set, split across the ranks and gathered
    nll = {run: (tmp_path / run / "live/plots/metrics/eval/decision_nll.tsv").read_text().split() for run in ("one", "two")}
    assert nll["one"][:4:2] == nll["two"][:4:2] == ["step", "12"]
    assert abs(float(nll["one"][-1]) - float(nll["two"][-1])) < 1e-2, nll


def test_one_process_runs_without_torchrun_and_gives_the_same_bytes(inputs: Path, tmp_path: Path) -> None:
    """``scripts/launch`` with 1 process skips torchrun's parent process (~3 s per stage) and changes nothing."""
    plain, log_plain = launch(inputs, tmp_path / "plain", nproc=1)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    launched, _ = launch(inputs, tmp_path / "torchrun", nproc=1, launcher=[torchrun, "--standalone", "--nproc_per_node=1"])
    assert plain.keys() == launched.keys()
    assert all(torch.equal(plain[k], launched[k]) for k in plain)
    assert "torchrun" not in log_plain
