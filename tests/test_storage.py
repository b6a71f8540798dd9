"""Storage that scales: checkpoint dirs (optimizer state) stay out of the DVC remote, models go in.

At 1.4B-7B parameters a Trainer checkpoint (weights + Adam moments + RNG states) is tens of GB per
experiment; only resuming a killed run needs it, and that happens where the run was killed. So every
``checkpoints/...`` out in ``dvc.yaml`` is ``persist: true`` (resume) and ``push: false`` (not
pushed), while ``models/...`` outs are pushed as before.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from tests.conftest import run


def _outs(repo_root: Path) -> dict[str, dict]:
    """Every out of every stage in dvc.yaml: path (with ``${...}`` unexpanded) -> its flags."""
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    found: dict[str, dict] = {}
    for stage in stages.values():
        body = stage.get("do", stage)
        for out in body.get("outs", []):
            path, flags = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            found[path] = flags or {}
    return found


def test_checkpoint_outs_are_persisted_but_not_pushed_and_models_are_pushed(repo_root: Path) -> None:
    outs = _outs(repo_root)
    checkpoints = {p: f for p, f in outs.items() if p.startswith("checkpoints/")}
    models = {p: f for p, f in outs.items() if p.startswith("models/")}
    assert len(checkpoints) >= 6 and len(models) >= 6, outs  # every training stage has both
    for path, flags in checkpoints.items():
        assert flags.get("persist") is True and flags.get("push") is False, (path, flags)
    for path, flags in models.items():
        assert flags.get("push", True) is True, (path, flags)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _remote_has(remote: Path, data: bytes) -> bool:
    digest = _md5(data)
    return (remote / "files" / "md5" / digest[:2] / digest[2:]).is_file()


@pytest.mark.slow
def test_dvc_push_leaves_checkpoints_local_and_a_clone_pulls_the_model(repo_root: Path, tmp_path: Path) -> None:
    """A tiny repo whose one stage declares its outs with the real ``wl_train`` flags; ~5 s.

    Covers DVC's handling of the flags (dvc push, a fresh clone's pull, no re-run with
    ``--allow-missing``); the training stages' own resume from a local checkpoint dir is
    ``tests/test_resume.py``'s job and is unchanged (``persist: true`` is what it relies on).
    """
    real = _outs(repo_root)
    model_flags = real["models/weighted/${key}"]
    ckpt_flags = real["checkpoints/weighted/${key}"]
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    repo.mkdir()
    (repo / "make.py").write_text(
        "import os\n"
        "os.makedirs('models/m', exist_ok=True); os.makedirs('checkpoints/m/checkpoint-2', exist_ok=True)\n"
        "open('models/m/model.safetensors', 'w').write('weights of the final model')\n"
        "open('checkpoints/m/checkpoint-2/optimizer.pt', 'w').write('adam moments, large')\n"
    )
    stage = {"cmd": "python make.py", "deps": ["make.py"],
             "outs": [{"models/m": model_flags} if model_flags else "models/m", {"checkpoints/m": ckpt_flags}]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "remote", "add", "-d", "local", str(remote)], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "trained"], repo)
    run(["dvc", "push"], repo)

    assert _remote_has(remote, b"weights of the final model")
    assert not _remote_has(remote, b"adam moments, large")
    assert (repo / "checkpoints/m/checkpoint-2/optimizer.pt").is_file()  # still in the local workspace

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert run(["dvc", "pull"], clone, check=False).returncode != 0  # plain pull: the checkpoint is missing
    run(["dvc", "pull", "--allow-missing"], clone)
    assert (clone / "models/m/model.safetensors").read_text() == "weights of the final model"
    out = run(["dvc", "repro", "--allow-missing"], clone).stdout
    assert "Running stage" not in out, out
