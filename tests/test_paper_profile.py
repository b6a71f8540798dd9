"""scripts/paper_profile.sh only overrides keys that exist (DVC's -S refuses new keys)."""

from __future__ import annotations

import re
from pathlib import Path

from lmlab.config import read_params_file


def test_every_override_names_an_existing_key(repo_root: Path) -> None:
    script = (repo_root / "scripts" / "paper_profile.sh").read_text()
    keys = re.findall(r"-S ([\w.\-]+)=", script)
    assert len(keys) > 20
    params = read_params_file(repo_root / "params.yaml")
    missing = []
    for dotted in keys:
        node = params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                missing.append(dotted)
                break
            node = node[part]
    assert not missing, f"keys not in params.yaml: {missing}"
