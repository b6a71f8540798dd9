"""Resuming only the same run (lmlab.resume), and crash-resume end to end through DVC.

End to end: SIGKILL a training stage, `dvc repro` again.

The stage is ``wl_train@odds_1_2-baseline`` (the cheapest training stage: a 1-layer GPT-2 on a small
decision set), in a throw-away repository copy shrunk by params overrides. Its checkpoint dir
``checkpoints/weighted/odds_1_2-baseline`` is a ``persist: true`` out, so DVC keeps it between runs and
the Trainer resumes from its last complete ``checkpoint-N``. The resumed model must equal, tensor
for tensor, the model of an uninterrupted run in a second copy.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from lmlab.device import select_runtime
from lmlab.resume import find_resume_checkpoint
from lmlab.training import TrainingParams, make_training_arguments
from tests.conftest import REPO_ROOT, copy_repository, dvc_env

STAGE = "wl_train@odds_1_2-baseline"
CHECKPOINTS = Path("checkpoints/weighted/odds_1_2-baseline")
MODEL = Path("models/weighted/odds_1_2-baseline")
MAX_STEPS = 40
TINY = {
    "weighted.sample.n_pool": 240,
    "weighted.sample.n_test": 40,
    "weighted.sets.n_rows": 96,
    "weighted.tokenizer.vocab_size": 400,
    "weighted.training.max_steps": MAX_STEPS,
    "weighted.training.save_steps": 10,
    "weighted.training.logging_steps": 10,
    "weighted.training.eval_steps": MAX_STEPS,
    "weighted.training.save_total_limit": 2,
}


def load_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        weights.update(load_file(f))
    assert weights, f"no weights in {model_dir}"
    return weights


def complete_checkpoints(repo: Path) -> list[Path]:
    root = repo / CHECKPOINTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("checkpoint-*") if (p / "trainer_state.json").exists()),
                  key=lambda p: int(p.name.split("-")[1]))


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every descendant at once, as a node failure or an OOM killer would.

    Killing the process group is not enough: torchrun starts its workers in new sessions
    (``start_new_session=True``), so the trainer would survive its killed launcher and finish
    the run behind the test's back. Killing one process after the other is not right either: a
    ``dvc repro`` that sees its command die rewrites ``.dvc/tmp/rwlock`` (non-atomically) before it
    exits, and a SIGKILL landing mid-write leaves the file empty, which no node failure does. So
    the tree is frozen top-down first (SIGSTOP: nobody reacts to anybody's death or starts a new
    child), then killed.
    """
    import psutil

    procs: list[psutil.Process] = []
    pending = [psutil.Process(pid)]
    while pending:  # breadth-first, each process stopped before its children are listed
        proc = pending.pop(0)
        try:
            proc.send_signal(signal.SIGSTOP)
            procs.append(proc)
            pending.extend(proc.children())
        except psutil.NoSuchProcess:
            pass
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=30)
    assert not alive, alive


def repro(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["dvc", "repro", *args, STAGE], cwd=repo, env=dvc_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return proc


def test_resume_checkpoint_ignores_missing_and_incomplete(tmp_path: Path) -> None:
    assert find_resume_checkpoint(tmp_path / "absent") is None
    (tmp_path / "checkpoint-3").mkdir()
    assert find_resume_checkpoint(tmp_path) is None


def test_checkpoint_dir_is_kept_for_the_same_run_and_wiped_for_another(tmp_path: Path) -> None:
    from lmlab.resume import CHECKPOINT_STAMP, checkpoint_to_resume, run_fingerprint

    ckpt = tmp_path / "ckpt"
    data = tmp_path / "train.jsonl"
    data.write_text("a\n")
    first = run_fingerprint({"lr": 0.1}, [data])
    assert checkpoint_to_resume(ckpt, first) is None
    (ckpt / "checkpoint-3").mkdir()
    checkpoint_to_resume(ckpt, run_fingerprint({"lr": 0.1}, [data]))
    assert (ckpt / "checkpoint-3").exists(), "same params and data: the checkpoint is kept"
    data.write_text("b\n")
    changed = run_fingerprint({"lr": 0.1}, [data])
    assert changed != first
    checkpoint_to_resume(ckpt, changed)
    assert not (ckpt / "checkpoint-3").exists(), "changed data: stale checkpoints are removed"
    assert json.loads((ckpt / CHECKPOINT_STAMP).read_text()) == {"fingerprint": changed}
    assert run_fingerprint({"lr": 0.2}) != run_fingerprint({"lr": 0.1})


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-gpt-neox", "tiny-t5"])
def test_resume_loads_every_weight_under_its_in_memory_name(name: str, tmp_path: Path, tiny_tokenizer) -> None:
    """GPT-NeoX saves lm_head as embed_out; tied embeddings are saved once: both must come back."""
    from lmlab.modeling import ModelSpec, build_model
    from lmlab.training import ResumableTrainer

    spec = ModelSpec(name, n_layer=1, d_model=32, n_head=2, d_ff=64, max_positions=64)
    saved = build_model(spec, tiny_tokenizer, seed=1)
    saved.save_pretrained(tmp_path / "checkpoint-2")
    fresh = build_model(spec, tiny_tokenizer, seed=2)
    assert any(not torch.equal(a, b) for a, b in zip(saved.state_dict().values(), fresh.state_dict().values()))
    args = make_training_arguments(TrainingParams(max_steps=1, device="cpu"), tmp_path / "out", seed=0,
                                   runtime=select_runtime("cpu"), do_eval=False)
    ResumableTrainer(model=fresh, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint-2"))
    for (key, a), b in zip(saved.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), key


def test_resume_refuses_a_checkpoint_missing_a_weight(tmp_path: Path, tiny_tokenizer) -> None:
    from safetensors.torch import load_file, save_file

    from lmlab.modeling import ModelSpec, build_model
    from lmlab.training import ResumableTrainer

    model = build_model(ModelSpec("tiny-gpt2", n_layer=1, d_model=32, n_head=2, d_ff=64), tiny_tokenizer, seed=1)
    model.save_pretrained(tmp_path / "checkpoint-2")
    weights = tmp_path / "checkpoint-2" / "model.safetensors"
    state = load_file(str(weights))
    dropped = next(k for k in state if k.endswith("mlp.c_fc.weight"))
    save_file({k: v for k, v in state.items() if k != dropped}, str(weights), metadata={"format": "pt"})
    args = make_training_arguments(TrainingParams(max_steps=1, device="cpu"), tmp_path / "out", seed=0,
                                   runtime=select_runtime("cpu"), do_eval=False)
    with pytest.raises(RuntimeError, match="lacks weights.*c_fc"):
        ResumableTrainer(model=model, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint-2"))


def test_fingerprint_covers_every_input_file_by_relative_path_and_content(tmp_path: Path) -> None:
    from lmlab.resume import run_fingerprint

    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "sub" / "weights.bin").write_bytes(b"\x00" * (3 << 20))  # several read chunks
    (model / "config.json").write_text("{}")
    data = tmp_path / "train.jsonl"
    data.write_text("a\n")
    base = run_fingerprint({"lr": 0.1}, [data, model])
    assert run_fingerprint({"lr": 0.1}, [data, model]) == base
    (model / "sub" / "weights.bin").write_bytes(b"\x00" * (3 << 20) + b"\x01")
    changed_weights = run_fingerprint({"lr": 0.1}, [data, model])
    (model / "sub" / "weights.bin").rename(model / "weights.bin")  # same bytes, other place
    moved = run_fingerprint({"lr": 0.1}, [data, model])
    missing = run_fingerprint({"lr": 0.1}, [tmp_path / "absent.jsonl", model])
    assert len({base, changed_weights, moved, missing}) == 4


def test_final_checkpoint_is_not_resumed(tmp_path: Path) -> None:
    """Resuming at max_steps would make the Trainer run one extra step (transformers re-enters the
    last epoch before it checks max_steps): a finished run's checkpoints are dropped instead."""
    def checkpoint(step: int, max_steps: int) -> Path:
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}))
        return path

    checkpoint(10, 40)
    assert find_resume_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    checkpoint(40, 40)
    assert find_resume_checkpoint(tmp_path) is None
    assert not list(tmp_path.glob("checkpoint-*"))


def test_checkpoint_dir_is_persisted() -> None:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    outs = stages["wl_train"]["do"]["outs"]
    persisted = [next(iter(o)) for o in outs if isinstance(o, dict) and next(iter(o.values())).get("persist")]
    assert persisted == ["checkpoints/weighted/${key}"], outs


@pytest.mark.slow
def test_sigkill_then_repro_resumes_and_matches_uninterrupted_run(tmp_path: Path,
                                                                  request: pytest.FixtureRequest) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    crashed = copy_repository(tmp_path / "a" / "repo", TINY)
    reference = copy_repository(tmp_path / "b" / "repo", TINY)

    # The uninterrupted reference runs meanwhile (its own copy, cache and lock).
    ref_proc = subprocess.Popen(["dvc", "repro", "-f", STAGE], cwd=reference, env=dvc_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    request.addfinalizer(lambda: ref_proc.poll() is None and kill_tree(ref_proc.pid))

    victim = subprocess.Popen(["dvc", "repro", STAGE], cwd=crashed, env=dvc_env(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while not complete_checkpoints(crashed):
            assert victim.poll() is None, "the stage ended before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.05)
    finally:
        kill_tree(victim.pid)
        victim.wait()
    left = complete_checkpoints(crashed)
    time.sleep(2.0)
    assert complete_checkpoints(crashed) == left, "something is still training after the kill"
    killed_at = left[-1]
    killed_step = int(killed_at.name.split("-")[1])
    assert killed_step < MAX_STEPS, "the run finished before it could be killed"
    assert not (crashed / MODEL).exists(), "a killed training run must not leave a final model"
    rwlock = crashed / ".dvc" / "tmp" / "rwlock"
    assert isinstance(json.loads(rwlock.read_text()), dict), "the freeze let DVC tear its lock table"

    resumed = repro(crashed)
    log = resumed.stdout + resumed.stderr
    assert re.search(rf"resuming from \S*checkpoint-{killed_step}\b", log), log[-4000:]
    assert "starting afresh" not in log, log[-4000:]

    ref_out, _ = ref_proc.communicate(timeout=900)
    assert ref_proc.returncode == 0, ref_out[-6000:]
    assert "resuming from" not in ref_out

    a, b = load_weights(crashed / MODEL), load_weights(reference / MODEL)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=0, atol=1e-6), name
    state = (crashed / CHECKPOINTS / f"checkpoint-{MAX_STEPS}" / "trainer_state.json")
    assert state.exists(), "the resumed run did not reach max_steps"
