"""Write-up profiles: a write-up's protocol as an overlay of ``params.yaml``, applied as one DVC experiment.

A profile (``profiles/<name>.yaml``) is a nested mapping with the shape of ``params.yaml`` holding
only the values the write-up's protocol sets (models, hyperparameters, data sizes, lengths). It
never adds a key: :func:`overlay_keys` checks every leaf against the params file, naming the
profile's ``file:line:col`` for a key that does not exist, so a typo cannot silently train the
default. :func:`set_param_args` turns it into ``dvc exp run -S key=value`` arguments, which keep
``params.yaml`` untouched and make the profile one experiment (``dvc exp apply`` promotes it).
Leaves are whole values: a list or a mapping that is empty in ``params.yaml`` is set as one value,
a mapping that exists is descended into.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from lmlab.config import key_position, read_params_file
from lmlab.errors import ParamsError

__all__ = ["PROFILE_META_KEY", "apply_overlay", "load_profile", "overlay_keys", "overlay_position", "set_param_args"]

# Optional top-level mapping of a profile that is not a parameter: what the profile is for.
PROFILE_META_KEY = "profile"


def load_profile(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(overlay, meta)`` of a profile file; ``meta`` is its ``profile:`` block (writeup, needs...).

    The overlay keeps ruamel's positions, so :func:`overlay_keys` can name a bad key's line.
    """
    data = read_params_file(path)
    if not isinstance(data, Mapping):
        raise ParamsError("a profile is a mapping shaped like params.yaml.", path=path)
    meta = data.get(PROFILE_META_KEY) or {}
    if not isinstance(meta, Mapping):
        raise ParamsError("must be a mapping (writeup, description, needs).", path=path, key=PROFILE_META_KEY)
    overlay = {key: value for key, value in data.items() if key != PROFILE_META_KEY}
    return _Positioned(overlay, data), dict(meta)


class _Positioned(dict):
    """A top-level mapping that answers positions from the file it was read from."""

    def __init__(self, items: Mapping[str, Any], source: Any) -> None:
        super().__init__(items)
        self.lc = getattr(source, "lc", None)


def _leaves(node: Mapping[str, Any], base: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, value, the base's value or KeyError)`` for every leaf of ``node``."""
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        base_value = base.get(key, KeyError) if isinstance(base, Mapping) else KeyError
        if isinstance(value, Mapping) and isinstance(base_value, Mapping) and base_value:
            yield from _leaves(value, base_value, dotted)
        else:
            yield dotted, value, base_value


def overlay_keys(overlay: Mapping[str, Any], params: Mapping[str, Any], *,
                 profile_path: str | Path = "profile") -> dict[str, Any]:
    """``{dotted key: value}`` of the overlay; every key must exist in ``params``.

    A mapping value is descended into only where ``params`` holds a non-empty mapping (so a
    profile can set ``ilm.transfer.levels: [A1]`` or replace an empty mapping as one value).
    """
    keys: dict[str, Any] = {}
    for dotted, value, base_value in _leaves(overlay, params):
        if base_value is KeyError:
            line, col = overlay_position(overlay, dotted)
            raise ParamsError("not a key of params.yaml (a profile only sets existing keys).", path=profile_path,
                              line=line, column=col, key=dotted, hint="check the spelling against params.yaml")
        keys[dotted] = value
    return keys


def overlay_position(node: Any, dotted: str) -> tuple[int | None, int | None]:
    """1-based (line, column) of the deepest part of ``dotted`` present in a parsed overlay."""
    line = col = None
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            break
        line, col = key_position(node, part)
        node = node[part]
    return line, col


def apply_overlay(params: Mapping[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``params`` with each dotted key of ``keys`` replaced (what the experiment runs with)."""
    result = json.loads(json.dumps(params))
    for dotted, value in keys.items():
        *parents, leaf = dotted.split(".")
        node = result
        for part in parents:
            node = node[part]
        node[leaf] = json.loads(json.dumps(value))
    return result


def _yaml_value(value: Any) -> str:
    """A value as DVC's ``-S`` parses it (YAML flow style: lists, null, booleans, numbers)."""
    if isinstance(value, str):
        return value
    value = json.loads(json.dumps(value))  # ruamel's commented containers -> plain lists and dicts
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...")


def set_param_args(keys: Mapping[str, Any]) -> list[str]:
    """``["-S", "key=value", ...]`` for ``dvc exp run``."""
    args: list[str] = []
    for dotted, value in keys.items():
        args += ["-S", f"{dotted}={_yaml_value(value)}"]
    return args
