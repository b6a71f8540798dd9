"""Determinism on CPU: `dvc repro` then `dvc repro -f` give byte-identical artifacts.

In a throw-away repository copy shrunk by params overrides, the data stages of every family
(generated samples, splits, masked pickles, weighted training sets and tokenizer) and one tiny
training stage (``wl_train@odds_1_2-baseline``) run twice. Every output file of those stages must be
byte-identical, the metrics JSON identical, and the output hashes recorded in ``dvc.lock``
the same.

Two outputs are not compared byte for byte: the DVCLive dir (its ``plots/metrics/*.tsv`` rows
carry wall-clock timestamps; its ``metrics.json`` is compared) and the Trainer checkpoint dir.
That dir is ``persist: true``, so the forced re-run finds the first run's final checkpoint; it
must not resume from it (the Trainer would add one step, see lmlab.training.find_resume_checkpoint)
but train again from the start, and end with the same model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_repository, run

pytestmark = pytest.mark.slow

TRAIN = "wl_train@odds_1_2-baseline"
# Tokenizer stages other than the one the training stage needs are left out to keep the test
# short: BPE training is deterministic (tests/test_tokenization.py).
STAGES = [
    "install_punkt", "ilm_sample", "ilm_split", "ilm_mask@A1",
    "ens_sample", "ens_split",
    "wl_sample", "wl_data", "wl_tokenizer",
    "mono_sample", "mono_split",
    TRAIN,
]
SMALL = {
    "ilm.sample.n_documents": 600,
    "ensemble.sample.n_rows": 80,
    "weighted.sample.n_pool": 240,
    "weighted.sample.n_test": 40,
    "weighted.sets.n_rows": 96,
    "weighted.tokenizer.vocab_size": 400,
    "weighted.training.max_steps": 16,
    "weighted.training.save_steps": 8,
    "weighted.training.logging_steps": 4,
    "weighted.training.eval_steps": 16,
    "monotonic.sample.n_documents": 200,
}
NOT_COMPARED = ("dvclive/", "checkpoints/")


def lock_outs(repo: Path) -> dict[str, str]:
    """``path -> md5`` of every out of STAGES in dvc.lock (foreach stages included)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    hashes = {}
    for name in STAGES:
        assert name in lock, f"{name} missing from dvc.lock"
        for out in lock[name].get("outs", []):
            if not out["path"].startswith(NOT_COMPARED):
                hashes[out["path"]] = out["md5"]
    return hashes


def file_digests(repo: Path, outs: list[str]) -> dict[str, str]:
    digests = {}
    for out in outs:
        root = repo / out
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            digests[str(f.relative_to(repo))] = hashlib.md5(f.read_bytes()).hexdigest()
    return digests


def metrics(repo: Path) -> dict[str, object]:
    files = [*sorted((repo / "reports").rglob("*.json")), repo / "models/weighted/odds_1_2-baseline/train_summary.json",
             repo / "dvclive/weighted/odds_1_2-baseline/metrics.json"]
    return {str(f.relative_to(repo)): json.loads(f.read_text()) for f in files}


def test_repro_twice_gives_identical_artifacts(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_repository(repo, SMALL)

    run(["dvc", "repro", *STAGES], repo)
    first_lock = lock_outs(repo)
    first_files = file_digests(repo, list(first_lock))
    first_metrics = metrics(repo)
    assert "models/weighted/odds_1_2-baseline" in first_lock and "data/ilm/masked/A1" in first_lock
    assert len(first_metrics) >= 4, first_metrics.keys()
    assert any(p.endswith(".pkl") for p in first_files) and any(p.endswith(".safetensors") for p in first_files)

    assert (repo / "checkpoints" / "weighted" / "odds_1_2-baseline" / "checkpoint-16").is_dir()
    second = run(["dvc", "repro", "-f", *STAGES], repo)
    log = second.stdout + second.stderr
    assert "resuming from" not in log and "training again from the start" in log, log[-3000:]

    assert lock_outs(repo) == first_lock
    second_files = file_digests(repo, list(first_lock))
    changed = sorted(k for k in first_files.keys() | second_files.keys() if first_files.get(k) != second_files.get(k))
    assert not changed, changed
    assert metrics(repo) == first_metrics
