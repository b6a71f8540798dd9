"""Check a whole params file with every stage's own strict loader, in a fraction of a second.

Why: ``dvc exp run -S gamma=abc`` used to fail only when the first stage reading ``gamma`` ran,
~14 s later (after importing torch and transformers), and DVC had deleted that stage's outputs
first. The ``check_params`` stage runs this check before every other stage, so a bad value stops
the run with exit code 2 and one paragraph naming ``params.yaml:line:col`` before any model
import and before DVC touches another stage's outputs. ``scripts/profiles.py --check`` runs the
same check on params with a write-up profile applied.

The loads are found statically: every ``load_params``/``load_mapping``/``load_value`` call in
``stages/*.py`` with a constant (or command-line templated) key. Their types are resolved from
the stage's own ``from ... import`` lines, importing only the modules that define them (the
params modules, which import no torch), never the stage script itself (which may import the
model code). A load whose key is computed at run time (``config.gamma_key``) is not checked here;
the stage still checks it when it runs.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.config import load_mapping, load_params, load_value, read_params_file
from lmlab.errors import ParamsError

__all__ = ["LoaderCall", "stage_loader_calls", "check_params_file"]

LOADERS = {"load_params", "load_mapping", "load_value"}


@dataclass(frozen=True)
class LoaderCall:
    """One strict params load a stage performs: which loader, which key pattern, which type."""

    stage: str
    loader: str
    key: re.Pattern[str]
    tp: Any
    top_level: tuple[str, ...]
    from_command_line: frozenset[str] = frozenset()  # fields the stage overrides from its arguments
    check: Callable[[Any], None] | None = None  # a module-level check function (lambdas are skipped)
    hint: str | None = None


def _flag_defaults(tree: ast.AST) -> dict[str, str]:
    """``{dest: default}`` of the script's ``add_argument("--x-y", default="...")`` calls."""
    defaults = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
                and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("--")):
            for keyword in node.keywords:
                if keyword.arg == "default" and isinstance(keyword.value, ast.Constant):
                    defaults[node.args[0].value[2:].replace("-", "_")] = str(keyword.value.value)
    return defaults


def _all_commands(dvc_yaml: Path) -> list[str]:
    """Every stage command of dvc.yaml, whitespace-normalised (parsed once: C loader when available)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    stages = yaml.load(dvc_yaml.read_text(), Loader=loader).get("stages", {})  # noqa: S506 - a safe loader
    return [" ".join(str(st.get("do", st).get("cmd", "")).split()) for st in stages.values()]


def _commands(all_commands: list[str], script: str) -> list[str]:
    """The dvc.yaml commands that run ``stages/<script>.py``."""
    return [cmd for cmd in all_commands if f"stages/{script}.py" in cmd]


def _key_patterns(node: ast.expr, commands: list[str], defaults: dict[str, str]) -> list[re.Pattern[str]]:
    """The dotted keys a loader call reads, one per dvc.yaml command running the script.

    An f-string's ``{args.x}`` takes the value the command passes as ``--x`` (its argparse default
    when the command does not); a DVC template (``${key}``, a foreach item) matches any one level.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.compile(re.escape(node.value))]
    if not isinstance(node, ast.JoinedStr):
        return []  # a key computed at run time (e.g. a config's gamma_key): not checkable statically
    patterns = set()
    for cmd in commands or [""]:
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(re.escape(value.value))
                continue
            expr = value.value
            dest = expr.attr if isinstance(expr, ast.Attribute) else ""
            match = re.search(rf"--{dest.replace('_', '-')}(?:=|\s+)(\S+)", cmd) if dest else None
            given = match.group(1) if match else defaults.get(dest)
            parts.append(r"[^.]+" if given is None or "${" in given else re.escape(given))
        patterns.add("".join(parts))
    return [re.compile(p) for p in sorted(patterns)]


class _ImportedNames(Mapping[str, Any]):
    """The names a stage script imports at module level, each imported only when looked up.

    Evaluating ``load_params(ModelSpec, ...)``'s type this way imports ``lmlab.modeling`` (no torch)
    and not the stage's training code.
    """

    def __init__(self, tree: ast.Module) -> None:
        self._where: dict[str, tuple[str, str | None]] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self._where[alias.asname or alias.name] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self._where[alias.asname or alias.name.split(".")[0]] = (alias.name, None)

    def __getitem__(self, name: str) -> Any:
        module, attr = self._where[name]
        imported = importlib.import_module(module)
        return imported if attr is None else getattr(imported, attr)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


def _resolve(node: ast.expr, names: _ImportedNames, path: Path) -> Any:
    return eval(compile(ast.Expression(node), str(path), "eval"), {}, names)  # noqa: S307 - our own stage code


def stage_loader_calls(stages_dir: Path, dvc_yaml: Path) -> list[LoaderCall]:
    """Every ``load_params``/``load_mapping``/``load_value`` call with a static key in the stage scripts."""
    calls, all_commands = [], _all_commands(dvc_yaml)
    for path in sorted(stages_dir.glob("*.py")):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _ImportedNames(tree)
        commands, defaults = _commands(all_commands, path.stem), _flag_defaults(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in LOADERS):
                continue
            loader = node.func.id
            key_node, type_node = (node.args[1], node.args[2]) if loader == "load_value" else (node.args[2], node.args[0])
            top_level: tuple[str, ...] = ()
            overridden: set[str] = set()
            check = hint = None
            for keyword in node.keywords:
                if keyword.arg == "top_level":
                    top_level = tuple(ast.literal_eval(keyword.value))
                elif keyword.arg == "overrides":  # e.g. {"models": models} from --model arguments
                    overridden |= {k.value for d in ast.walk(keyword.value) if isinstance(d, ast.Dict)
                                   for k in d.keys if isinstance(k, ast.Constant)}
                elif keyword.arg in ("check", "hint") and isinstance(keyword.value, ast.Name):
                    value = _resolve(keyword.value, names, path)  # check_gamma, GAMMA_HINT; not lambdas
                    check, hint = (value, hint) if keyword.arg == "check" else (check, value)
            tp = _resolve(type_node, names, path)
            for pattern in _key_patterns(key_node, commands, defaults):
                calls.append(LoaderCall(path.stem, loader, pattern, tp, top_level, frozenset(overridden),
                                        check if loader == "load_value" else None, hint))
    return calls


def _dotted_keys(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            yield dotted
            yield from _dotted_keys(value, dotted)


def check_params_file(params_file: Path, calls: list[LoaderCall]) -> int:
    """Run every stage loader on ``params_file`` (raises the first error); returns the number of loads."""
    data = read_params_file(params_file)
    keys = list(_dotted_keys(data))
    loads = 0
    for call in calls:
        for key in (k for k in keys if call.key.fullmatch(k)):
            try:
                if call.loader == "load_value":
                    load_value(params_file, key, call.tp, check=call.check, hint=call.hint)
                elif call.loader == "load_params":
                    load_params(call.tp, params_file, key, top_level=call.top_level)
                else:
                    load_mapping(call.tp, params_file, key, top_level=call.top_level)
            except ParamsError as exc:
                # a field the stage takes from its command line (dvc.yaml), not from params.yaml
                if not (exc.key and exc.key.rpartition(".")[2] in call.from_command_line):
                    raise
            loads += 1
    return loads
