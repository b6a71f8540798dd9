"""Every stage in dvc.yaml lists the lmlab modules its script runs, so a code change re-runs it.

The closure is static: every `lmlab` import of the stage script and, transitively, of each library
module it reaches (function-level imports included). Two kinds of module are not required:
- plumbing that cannot change a computed result: atomic writes, error texts, logging and progress
  reporting (`lmlab.progress` only observes loops), the stage wrapper and params parsing (listing them would re-run all 46 stages on any edit to them);
- `lmlab.ilm.cli`, the command-line front end, which library modules import only in their own
  `python -m` entry points.

`lmlab.numerics` is imported by the package itself (`import lmlab` pins the CPU numerics), which
no import statement of a stage shows: every stage whose code imports torch lists it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_REQUIRED = {f"src/lmlab/{name}.py" for name in ("artifacts", "errors", "logs", "progress", "stage", "config",
                                                        "ilm/cli")}


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


TORCH_USERS = {"torch", "transformers", "sentence_transformers", "peft", "accelerate"}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotation-only imports run nothing)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_torch(path: Path) -> bool:
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in TORCH_USERS for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in TORCH_USERS:
            return True
    return False


NUMERICS = "src/lmlab/numerics.py"


def required_deps(script: Path) -> set[str]:
    """The closure, plus the numerics pin when any of that code computes with torch."""
    closure = code_closure(script)
    if any(imports_torch(ROOT / module) for module in closure | {str(script.relative_to(ROOT))}):
        closure.add(NUMERICS)
    return closure


STAGES = {name: body.get("do", body) for name, body in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


@pytest.mark.parametrize(("name", "stage"), STAGES.items(), ids=list(STAGES))
def test_stage_lists_the_code_it_runs(name: str, stage: dict) -> None:
    script = re.search(r"\bstages/\w+\.py\b", stage["cmd"])
    assert script, f"{name}: no stages/*.py in its cmd"
    deps = set(stage.get("deps", []))
    assert script.group(0) in deps, f"{name}: its script {script.group(0)} is not a dep"
    missing = sorted(required_deps(ROOT / script.group(0)) - deps)
    assert not missing, f"{name}: add to its deps in dvc.yaml: {missing}"


def test_the_closure_follows_imports_transitively() -> None:
    closure = code_closure(ROOT / "stages" / "ilm_train.py")
    assert {"src/lmlab/ilm/training.py", "src/lmlab/training.py", "src/lmlab/device.py"} <= closure
    assert not closure & NOT_REQUIRED


def test_torch_stages_depend_on_the_numerics_pin() -> None:
    assert NUMERICS in required_deps(ROOT / "stages" / "wl_train.py")
    assert NUMERICS not in required_deps(ROOT / "stages" / "ilm_split.py")
