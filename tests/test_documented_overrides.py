"""The README and docs only show `-S` overrides of keys that exist (DVC's -S refuses new keys)."""

from __future__ import annotations

import re
from pathlib import Path

from lmlab.config import read_params_file


def _missing_keys(repo_root: Path, keys: list[str]) -> list[str]:
    params = read_params_file(repo_root / "params.yaml")
    missing = []
    for dotted in keys:
        node = params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    return missing


def test_every_documented_override_names_an_existing_key(repo_root: Path) -> None:
    """Every `-S key=value` in the README and docs/ is a command users copy: its key must exist."""
    missing, total = [], 0
    for doc in [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]:
        keys = re.findall(r"-S '?([A-Za-z_][\w.\-]*)=", doc.read_text())
        total += len(keys)
        missing += [f"{doc.name}: {key}" for key in _missing_keys(repo_root, keys)]
    assert total > 30
    assert not missing, f"documented -S keys not in params.yaml: {missing}"
