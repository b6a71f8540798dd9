"""Every stage in dvc.yaml lists the lmlab modules its script runs, so a code change re-runs it.

The closure is static: every `lmlab` import of the stage script and, transitively, of each library
module it reaches (function-level imports included). Two kinds of module are not required:
- plumbing that cannot change a computed result: atomic writes, error texts, logging, the stage
  wrapper and params parsing (listing them would re-run all 46 stages on any edit to them);
- `lmlab.ilm.cli`, the command-line front end, which library modules import only in their own
  `python -m` entry points.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_REQUIRED = {f"src/lmlab/{name}.py" for name in ("artifacts", "errors", "logs", "stage", "config", "ilm/cli")}


def _lmlab_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lmlab":
            modules.add(node.module)
            # `from lmlab.ilm import templates`: the names may be submodules of a family package
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.split(".")[0] == "lmlab")
    return {f"src/{m.replace('.', '/')}.py" for m in modules if (ROOT / "src" / f"{m.replace('.', '/')}.py").exists()}


def code_closure(script: Path) -> set[str]:
    """The lmlab source files a stage script can run (see the module docstring)."""
    seen: set[str] = set()
    todo = list(_lmlab_imports(script) - NOT_REQUIRED)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_lmlab_imports(ROOT / module) - NOT_REQUIRED)
    return seen


STAGES = {name: body.get("do", body) for name, body in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


@pytest.mark.parametrize(("name", "stage"), STAGES.items(), ids=list(STAGES))
def test_stage_lists_the_code_it_runs(name: str, stage: dict) -> None:
    script = re.search(r"\bstages/\w+\.py\b", stage["cmd"])
    assert script, f"{name}: no stages/*.py in its cmd"
    deps = set(stage.get("deps", []))
    assert script.group(0) in deps, f"{name}: its script {script.group(0)} is not a dep"
    missing = sorted(code_closure(ROOT / script.group(0)) - deps)
    assert not missing, f"{name}: add to its deps in dvc.yaml: {missing}"


def test_the_closure_follows_imports_transitively() -> None:
    closure = code_closure(ROOT / "stages" / "ilm_train.py")
    assert {"src/lmlab/ilm/training.py", "src/lmlab/training.py", "src/lmlab/device.py"} <= closure
    assert not closure & NOT_REQUIRED
