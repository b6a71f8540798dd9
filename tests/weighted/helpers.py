"""Shared helpers of the weighted-loss family's tests: tiny params files and decision rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import write_params

TINY = {
    "sample.n_pool": 160, "sample.n_test": 40,
    "sets.size": 48,
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
