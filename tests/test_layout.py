"""The shape of the library and the stages: families over a core, stage names lead to files.

- ``lmlab/<family>/`` (ilm, ensemble, weighted, monotonic, report) may import the core and
  itself, never another family; the core (every module directly under ``lmlab/``) imports no
  family; no import cycle anywhere (function-level imports included: a cycle through a lazy
  import is still a cycle a reader has to untangle).
- every stage's script is ``stages/<stage>.py``; a script shared by several stages is named after
  what they share (``stages/tokenizer.py`` for ``*_tokenizer``, ``stages/ilm_train.py`` for
  ``ilm_train`` and ``ilm_train_transfer``); ``stages/`` holds nothing that is not a stage's script.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
FAMILIES = ("ilm", "ensemble", "weighted", "monotonic", "report")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in (SRC / "lmlab").rglob("*.py")}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The lmlab modules ``path`` imports, at any depth of its code (``from pkg import submodule`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def family_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FAMILIES else None


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    known = set(modules)
    return {name: imported_modules(path, known) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``a -> b -> ... -> a``, or None (iterative DFS, white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_every_family_is_a_subpackage_and_the_core_is_flat():
    modules = library_modules()
    for family in FAMILIES:
        assert f"lmlab.{family}" in modules, f"lmlab/{family}/__init__.py is missing"
    nested = [m for m in modules if m.count(".") >= 2 and family_of(m) is None]
    assert not nested, f"core modules live directly under lmlab/: {nested}"
    prefixed = [m for m in modules if family_of(m) and m.rsplit(".", 1)[-1].startswith(f"{family_of(m)}_")]
    assert not prefixed, f"module names inside a family drop the family prefix: {prefixed}"


def test_no_family_imports_another_and_the_core_imports_no_family():
    violations = []
    for module, imports in import_graph().items():
        own = family_of(module)
        for target in imports:
            other = family_of(target)
            if other is not None and other != own:
                violations.append(f"{module} imports {target}" + (" (core -> family)" if own is None else ""))
    assert not violations, "\n".join(sorted(violations))


def test_the_library_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_shape_checks_see_a_cross_family_import(tmp_path, monkeypatch):
    """The import walker reads function-level and ``from pkg import module`` imports."""
    (tmp_path / "lmlab" / "ilm").mkdir(parents=True)
    source = tmp_path / "lmlab" / "ilm" / "probe.py"
    source.write_text("def f():\n    from lmlab.weighted import loss\n")
    assert imported_modules(source, {"lmlab.weighted", "lmlab.weighted.loss"}) == {"lmlab.weighted",
                                                                                     "lmlab.weighted.loss"}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_script(stage: dict) -> str:
    cmd = stage.get("do", stage)["cmd"]
    match = re.search(r"\bstages/(\w+)\.py\b", cmd)
    assert match, f"no stages/*.py in {cmd!r}"
    return match.group(1)


def test_every_stage_runs_the_script_named_after_it():
    wrong = []
    for name, stage in STAGES.items():
        script = stage_script(stage)
        shared_suffix = name.endswith(f"_{script}")  # ilm_tokenizer -> tokenizer.py
        variant = name.startswith(f"{script}_") and script in STAGES  # ilm_train_transfer -> ilm_train.py
        if script != name and not shared_suffix and not variant:
            wrong.append(f"{name} runs stages/{script}.py")
    assert not wrong, wrong


def test_stages_holds_only_stage_scripts():
    used = {stage_script(stage) for stage in STAGES.values()}
    present = {p.stem for p in (ROOT / "stages").glob("*.py")} - {"__init__"}
    assert present == used, f"not a stage's script: {sorted(present - used)}; missing: {sorted(used - present)}"
