"""Shared helpers of the weighted-loss family's tests: tiny params files and decision rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def tiny_params(tmp_path: Path, **weighted_overrides: Any) -> Path:
    """The repository's params.yaml with a tiny weighted section (and overrides) written to tmp."""
    data = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    w = data["weighted"]
    w["sample"].update(n_pool=160, n_test=40)
    w["sets"].update(size=48)
    w["model"].update(d_model=32, d_ff=64, max_positions=128)
    w["training"].update(max_steps=4, batch_size=8, logging_steps=2, save_steps=4)
    w["tokenizer"].update(vocab_size=400)
    for dotted, value in weighted_overrides.items():
        node = w
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row(user: str, answer: str, row_id: str = "r") -> dict:
    return {"id": row_id, "conversations": [
        {"from": "system", "value": "Decide: Accept or Reject."},
        {"from": "user", "value": user},
        {"from": "assistant", "value": answer},
    ]}
