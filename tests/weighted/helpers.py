"""Shared helpers of the weighted-loss family's tests: tiny params files and decision rows."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import write_params

TINY = {
    "sample.n_pool": 160, "sample.n_test": 40,
    "sets.n_rows": 48,
    "model.d_model": 32, "model.d_ff": 64, "model.max_positions": 128,
    "training.max_steps": 4, "training.batch_size": 8, "training.logging_steps": 2, "training.save_steps": 4,
    "tokenizer.vocab_size": 400,
}


def tiny_params(tmp_path: Path, **weighted_overrides: Any) -> Path:
    """The repository's params.yaml with a tiny weighted section (and overrides) written to tmp.

    ``weighted_overrides`` are keys under ``weighted`` with ``__`` for the dots (``sample__n_test=5``).
    """
    overrides = {f"weighted.{key}": value for key, value in TINY.items()}
    overrides.update({f"weighted.{key.replace('__', '.')}": value for key, value in weighted_overrides.items()})
    return write_params(tmp_path / "params.yaml", overrides)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row(user: str, answer: str, row_id: str = "r") -> dict:
    return {"id": row_id, "conversations": [
        {"from": "system", "value": "Decide: Accept or Reject."},
        {"from": "user", "value": user},
        {"from": "assistant", "value": answer},
    ]}


BEGIN, END = "  # ===== Weighted-loss family =====", "  # ===== end Weighted-loss family ====="
CONFIGS = {"odds_1_2-baseline": {"set": "odds_1_2", "variant": "accept", "gamma_key": "weighted.baseline_gamma"},
           "odds_1_2-accept": {"set": "odds_1_2", "variant": "accept", "gamma_key": "gamma"}}


def run_ok(cmd: list[str], cwd: Path, env: dict) -> str:
    """Run ``cmd``; fail the test with the tail of its output unless it exits 0."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def family_dvc_yaml(repo_root: Path) -> str:
    """The weighted stages only, with wl_eval's model deps reduced to the test's configs.

    wl_train's templated out (``models/weighted/${key}``) is kept, so wl_eval depends on the models.
    """
    text = (repo_root / "dvc.yaml").read_text()
    block = text[text.index(BEGIN): text.index(END)]
    lines = [ln for ln in block.splitlines()
             if not ln.strip().startswith("- models/weighted/") or ln.strip() == "- models/weighted/tokenizer"
             or "${" in ln or ln.strip()[len("- models/weighted/"):] in CONFIGS]  # wl_train's own out stays
    # the first data stage depends on check_params's marker: keep that stage too
    check = text[text.index("  check_params:"): text.index("  install_punkt:")]
    return "stages:\n" + check + "\n".join(lines) + "\n"


SMALL = {
    "gamma": 4.0,
    "weighted.sample.n_pool": 120, "weighted.sample.n_test": 20,
    "weighted.sets.n_rows": 24, "weighted.sets.odds": {"odds_1_2": [1, 2]},
    "weighted.grid.gammas": {"odds_1_2": [4.0, 8.0]},
    "weighted.model.d_model": 16, "weighted.model.n_head": 2, "weighted.model.d_ff": 32,
    "weighted.tokenizer.vocab_size": 300,
    "weighted.training.max_steps": 3, "weighted.training.batch_size": 8,
    "weighted.training.logging_steps": 1, "weighted.training.save_steps": 3,
}
"""The weighted family at a size that runs end to end in seconds (shared with tests/report/test_seeds.py)."""
