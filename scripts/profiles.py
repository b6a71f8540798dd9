"""Apply a write-up profile (profiles/<name>.yaml) as one DVC experiment, or check or show it.

  scripts/lab profile --list                    the profiles and the write-up each follows
  scripts/lab profile NAME --show               the -S overrides it applies
  scripts/lab profile NAME --check              every key exists and type-checks as the stages load it
  scripts/lab profile NAME [dvc exp run args]   dvc exp run -n profile-NAME -S ... [args], e.g. --queue
  scripts/lab profile A+B ...                   several profiles as one experiment (B wins on shared keys)

The check loads params.yaml with the profile applied through the same strict typed loaders the
stages call (found by reading stages/*.py), so a value of the wrong type fails here, naming the
key, instead of hours into a cluster job.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmlab.config import load_mapping, load_params, load_value, read_params_file  # noqa: E402
from lmlab.errors import LmlabError, ParamsError  # noqa: E402
from lmlab.profiles import (  # noqa: E402
    apply_overlay,
    load_profile,
    overlay_keys,
    overlay_position,
    set_param_args,
)

PROFILES = ROOT / "profiles"
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


def _commands(dvc_yaml: Path, script: str) -> list[str]:
    """The dvc.yaml commands that run ``stages/<script>.py``."""
    import yaml

    stages = yaml.safe_load(dvc_yaml.read_text()).get("stages", {})
    cmds = [" ".join(str(st.get("do", st).get("cmd", "")).split()) for st in stages.values()]
    return [cmd for cmd in cmds if f"stages/{script}.py" in cmd]


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


def stage_loader_calls(stages_dir: Path = ROOT / "stages", dvc_yaml: Path = ROOT / "dvc.yaml") -> list[LoaderCall]:
    """Every ``load_params``/``load_mapping``/``load_value`` call with a static key in the stage scripts."""
    calls = []
    for path in sorted(stages_dir.glob("*.py")):
        if path.stem == "__init__":
            continue
        module = importlib.import_module(f"stages.{path.stem}")
        tree = ast.parse(path.read_text(), filename=str(path))
        commands, defaults = _commands(dvc_yaml, path.stem), _flag_defaults(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in LOADERS):
                continue
            loader = node.func.id
            key_node, type_node = (node.args[1], node.args[2]) if loader == "load_value" else (node.args[2], node.args[0])
            top_level: tuple[str, ...] = ()
            overridden: set[str] = set()
            for keyword in node.keywords:
                if keyword.arg == "top_level":
                    top_level = tuple(ast.literal_eval(keyword.value))
                elif keyword.arg == "overrides":  # e.g. {"models": models} from --model arguments
                    overridden |= {k.value for d in ast.walk(keyword.value) if isinstance(d, ast.Dict)
                                   for k in d.keys if isinstance(k, ast.Constant)}
            tp = eval(compile(ast.Expression(type_node), str(path), "eval"), vars(module))  # noqa: S307 - our own stage code
            for pattern in _key_patterns(key_node, commands, defaults):
                calls.append(LoaderCall(path.stem, loader, pattern, tp, top_level, frozenset(overridden)))
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
                    load_value(params_file, key, call.tp)
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


def profile_path(name: str, profiles: Path = PROFILES) -> Path:
    path = profiles / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in profiles.glob("*.yaml")))
        raise ParamsError(f"no such profile (profiles: {known}).", path=path)
    return path


def profile_params(path: Path, params_file: Path = ROOT / "params.yaml") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(keys, meta)``: the profile's dotted overrides (each checked to exist) and its ``profile:`` block."""
    overlay, meta = load_profile(path)
    return overlay_keys(overlay, read_params_file(params_file), profile_path=_shown(path)), meta


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def combined_params(paths: list[Path], params_file: Path = ROOT / "params.yaml") -> dict[str, Any]:
    """The overrides of several profiles applied in order (a later profile wins on a shared key)."""
    keys: dict[str, Any] = {}
    for path in paths:
        keys.update(profile_params(path, params_file)[0])
    return keys


def check_profile(path: Path | list[Path], params_file: Path = ROOT / "params.yaml",
                  calls: list[LoaderCall] | None = None) -> int:
    """Type-check profiles: params.yaml with their overrides through every stage's strict loader.

    An error in an overridden value names the profile's file, line and column.
    """
    import yaml

    paths = path if isinstance(path, list) else [path]
    keys = combined_params(paths, params_file)
    applied = apply_overlay(read_params_file(params_file), keys)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "params.yaml"
        target.write_text(yaml.safe_dump(applied, sort_keys=False))
        try:
            return check_params_file(target, stage_loader_calls() if calls is None else calls)
        except ParamsError as exc:
            culprit = next((k for k in keys if exc.key and (exc.key == k or exc.key.startswith(k + "."))), None)
            owner = next((p for p in reversed(paths) if culprit in profile_params(p, params_file)[0]), None)
            if owner is None:
                raise
            line, col = overlay_position(load_profile(owner)[0], culprit)
            raise ParamsError(exc.what, path=_shown(owner), line=line, column=col, key=exc.key,
                              hint=exc.hint) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?")
    parser.add_argument("--list", action="store_true", help="list the profiles")
    parser.add_argument("--show", action="store_true", help="print the -S overrides")
    parser.add_argument("--check", action="store_true", help="check every key and value against the stages")
    args, dvc_args = parser.parse_known_args(argv)
    if args.list or not args.name:
        for path in sorted(PROFILES.glob("*.yaml")):
            _, meta = load_profile(path)
            print(f"{path.stem:12s} write-up {meta.get('writeup', '?')}: {meta.get('description', '')}")
        return 0
    try:
        paths = [profile_path(name) for name in args.name.split("+")]
        if args.check:
            loads = check_profile(paths)
            print(f"profile {args.name}: every key exists and {loads} stage loads type-check")
            return 0
        keys = combined_params(paths)
    except LmlabError as exc:
        print(f"profile {args.name}: {exc}", file=sys.stderr)
        return 2
    overrides = set_param_args(keys)
    if args.show:
        print(" ".join(f"-S '{value}'" for value in overrides[1::2]))
        return 0
    command = ["dvc", "exp", "run", "-n", f"profile-{args.name.replace('+', '-')}", *overrides, *dvc_args]
    print("profile:", " ".join(command), flush=True)
    os.execvp(command[0], command)
    return 0  # unreachable


if __name__ == "__main__":
    raise SystemExit(main())
