"""Typed, strict parameters: a params.yaml section becomes a frozen dataclass.

Stages call :func:`load_params` (a section), :func:`load_value` (one value: ``seed``, ``gamma``,
``ensemble.judge``) and :func:`load_mapping` (named entries: ``weighted.configs``); nothing reads
``params.yaml`` by hand and the rest of the library never reads it at all.
Unknown keys, wrong types and invalid values raise :class:`ParamsError` naming the
file, line, column and dotted key, so a typo never silently becomes a default.

Dataclasses may validate values in ``__post_init__`` by raising ``ValueError`` whose
message starts with the field name followed by a colon (``"gamma: must be > 0"``); the
error is then reported against that key.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from lmlab.errors import ParamsError

T = TypeVar("T")

__all__ = ["load_params", "load_value", "load_mapping", "build_params", "params_to_dict", "read_params_file",
           "section_of", "key_position"]


def read_params_file(path: str | Path) -> Any:
    """Parse a YAML params file keeping line/column information for error messages."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ParamsError("the params file does not exist.", path=path, hint="pass --params PATH") from exc
    return _parse_params_text(str(path), text)


@functools.lru_cache(maxsize=8)
def _parse_params_text(path: str, text: str) -> Any:
    """The parsed file, cached by its text: a stage loads several sections and the params check ~70,
    and a round-trip parse of params.yaml costs ~20-50 ms each. Callers never mutate the result."""
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ParamsError(
            f"invalid YAML: {exc.problem}.",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    return data if data is not None else {}


def key_position(node: Any, key: str) -> tuple[int | None, int | None]:
    """1-based (line, column) of ``key`` in a mapping from :func:`read_params_file` (else the mapping's own)."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None, None
    try:
        line, col = lc.key(key)
    except (KeyError, TypeError, AttributeError):
        try:
            return lc.line + 1, lc.col + 1
        except AttributeError:
            return None, None
    return line + 1, col + 1


def section_of(data: Any, section: str, path: str | Path | None = None) -> Any:
    """Return the mapping at a dotted ``section`` of parsed params (``""`` = the root)."""
    node = data
    if not section:
        return node
    walked: list[str] = []
    for part in section.split("."):
        walked.append(part)
        if not isinstance(node, Mapping) or part not in node:
            raise ParamsError(
                "this section is missing from the params file.",
                path=path,
                key=".".join(walked),
                hint="add it (see the defaults in the repository's params.yaml).",
            )
        node = node[part]
    return node


def load_params(
    cls: type[T],
    path: str | Path,
    section: str,
    *,
    top_level: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Load ``section`` of the params file at ``path`` into the frozen dataclass ``cls``.

    ``top_level`` names keys read from the file's root (``seed``, ``gamma``) and merged into
    the section; ``overrides`` (already-typed values) win over both.
    """
    data = read_params_file(path)
    node = section_of(data, section, path)
    merged = _with_top_level(data, node, section, top_level, path)
    if overrides:
        merged.update(overrides)
    return build_params(cls, merged, key_prefix=section, path=path, node=node, root=data)


@typing.overload
def load_value(path: str | Path, key: str, tp: type[T], *, check: Callable[[T], None] | None = None,
               hint: str | None = None) -> T: ...


@typing.overload
def load_value(path: str | Path, key: str, tp: Any, *, check: Callable[[Any], None] | None = None,
               hint: str | None = None) -> Any: ...


def load_value(
    path: str | Path,
    key: str,
    tp: Any,
    *,
    check: Callable[[Any], None] | None = None,
    hint: str | None = None,
) -> Any:
    """The value at dotted ``key`` (``"seed"``, ``"ensemble.judge"``) of the params file, of type ``tp``.

    ``tp`` is any type :func:`build_params` accepts for a field (``int``, ``float``, ``Literal[...]``,
    ``dict[str, float]``, a dataclass...); ``bool`` never passes for a number. A missing key or a
    wrong type is a :class:`ParamsError` at ``path:line:col`` naming ``key``, with ``hint``.
    ``check(value)`` may raise :class:`ParamsError` for an invalid value; it is reported at ``key``
    (or at the error's own dotted key) with the file position filled in.
    """
    data = read_params_file(path)
    parent_key, _, leaf = key.rpartition(".")
    parent = section_of(data, parent_key, path)
    line, col = _position(data, key)
    if not isinstance(parent, Mapping) or leaf not in parent:
        raise ParamsError("this parameter is missing from the params file.", path=path, line=line, column=col,
                          key=key, hint=hint or f"add '{key}' (see the defaults in the repository's params.yaml).")

    def fail(what: str) -> ParamsError:
        return ParamsError(what, path=path, line=line, column=col, key=key, hint=hint)

    value = _coerce(tp, parent[leaf], fail, key, path, parent[leaf])
    _run_check(check, value, data, path, key, hint)
    return value


def load_mapping(
    cls: type[T],
    path: str | Path,
    section: str,
    *,
    top_level: Sequence[str] = (),
    check: Callable[[Mapping[str, T]], None] | None = None,
) -> Mapping[str, T]:
    """Every entry of the mapping at ``section`` (``weighted.configs``) as a ``cls``, by name, in file order.

    Each entry is built as ``load_params(cls, path, f"{section}.{name}", top_level=top_level)`` would;
    an empty mapping is an error. ``check(entries)`` may raise :class:`ParamsError` for a cross-entry
    problem; its dotted key (default: ``section``) is located in the file.
    """
    data = read_params_file(path)
    node = section_of(data, section, path)
    if not isinstance(node, Mapping) or not node:
        line, col = _position(data, section)
        raise ParamsError(f"expected a mapping of names to entries, got {_plain(node)!r}.", path=path, line=line,
                          column=col, key=section, hint="give at least one 'name: {...}' entry.")
    entries: dict[str, T] = {}
    for name, entry in node.items():
        prefix = f"{section}.{name}"
        if not isinstance(entry, Mapping):
            line, col = key_position(node, name)
            raise ParamsError(f"expected a mapping, got {_plain(entry)!r}.", path=path, line=line, column=col,
                              key=prefix)
        merged = _with_top_level(data, entry, prefix, top_level, path)
        entries[str(name)] = build_params(cls, merged, key_prefix=prefix, path=path, node=entry, root=data)
    result = types.MappingProxyType(entries)
    _run_check(check, result, data, path, section, None)
    return result


def _with_top_level(data: Any, node: Any, section: str, top_level: Sequence[str], path: str | Path) -> dict[str, Any]:
    """The section's keys plus the root's ``top_level`` keys (which must not be repeated in it)."""
    if not isinstance(node, Mapping):
        line, col = _position(data, section)
        raise ParamsError("expected a mapping of keys to values.", path=path, line=line, column=col, key=section)
    merged: dict[str, Any] = dict(node)
    for key in top_level:
        if key not in data:
            raise ParamsError("this top-level key is missing from the params file.", path=path, key=key)
        if key in merged:
            line, col = key_position(node, key)
            raise ParamsError(
                f"'{key}' is a top-level parameter and must not be repeated inside '{section}'.",
                path=path, line=line, column=col, key=f"{section}.{key}",
            )
        merged[key] = data[key]
    return merged


def _position(data: Any, dotted: str) -> tuple[int | None, int | None]:
    """1-based (line, column) of the deepest existing part of ``dotted`` in the parsed file."""
    node, position = data, key_position(data, "")
    for part in dotted.split(".") if dotted else ():
        if not isinstance(node, Mapping) or part not in node:
            break
        position, node = key_position(node, part), node[part]
    return position


def _run_check(check: Callable[[Any], None] | None, value: Any, data: Any, path: str | Path, key: str,
               hint: str | None) -> None:
    """Run ``check(value)``; a :class:`ParamsError` without a file gets ``path`` and its key's position."""
    if check is None:
        return
    try:
        check(value)
    except ParamsError as exc:
        if exc.path is not None:
            raise
        where = exc.key or key
        line, col = _position(data, where)
        raise ParamsError(exc.what, path=path, line=line, column=col, key=where, hint=exc.hint or hint) from exc


def build_params(
    cls: type[T],
    data: Mapping[str, Any],
    *,
    key_prefix: str = "",
    path: str | Path | None = None,
    node: Any = None,
    root: Any = None,
) -> T:
    """Build ``cls`` from a mapping, checking keys and types (see module docstring)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    node = node if node is not None else data
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}

    def fail(key: str, what: str, hint: str | None = None) -> ParamsError:
        in_section = key in (node or {})
        line, col = key_position(node, key) if in_section else key_position(root, key)
        # a top-level key merged into the section (``seed``) is reported under its own name
        top = not in_section and isinstance(root, Mapping) and key in root
        dotted = f"{key_prefix}.{key}" if key_prefix and not top else key
        return ParamsError(what, path=path, line=line, column=col, key=dotted, hint=hint)

    unknown = [k for k in data if k not in fields]
    if unknown:
        known = ", ".join(sorted(fields))
        raise fail(str(unknown[0]), "unknown parameter.", hint=f"remove it or use one of: {known}.")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise fail(name, "required parameter is missing.", hint=f"add '{name}' to the section.")
            continue
        sub_prefix = f"{key_prefix}.{name}" if key_prefix else name
        sub_node = node.get(name) if isinstance(node, Mapping) else None
        values[name] = _coerce(hints[name], data[name], lambda what, n=name: fail(n, what), sub_prefix, path, sub_node)
    try:
        return cls(**values)
    except ValueError as exc:
        message = str(exc)
        key, _, rest = message.partition(":")
        if key in fields and rest:
            raise fail(key, rest.strip()) from exc
        raise ParamsError(message, path=path, key=key_prefix or None) from exc


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, fail: Any, prefix: str, path: Any, node: Any) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return _plain(value)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, _raiser, prefix, path, node)
            except (_Mismatch, ParamsError) as exc:
                errors.append(exc)
        raise fail(f"expected {_type_name(tp)}, got {value!r}.")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise fail(f"must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise fail(f"expected a mapping, got {value!r}.")
        return build_params(tp, value, key_prefix=prefix, path=path, node=node)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise fail(f"expected a list, got {value!r}.")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        if origin is tuple and len(args) >= 1 and (len(args) != 2 or args[1] is not Ellipsis):
            if len(args) != len(value):
                raise fail(f"expected a list of {len(args)} items, got {len(value)}.")
            return tuple(_coerce(a, v, fail, prefix, path, None) for a, v in zip(args, value))
        return tuple(_coerce(item_tp, v, fail, prefix, path, None) for v in value)
    if origin in (dict, Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise fail(f"expected a mapping, got {value!r}.")
        args = get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return types.MappingProxyType(
            {str(k): _coerce(val_tp, v, fail, f"{prefix}.{k}", path, None) for k, v in value.items()}
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise fail(f"expected true or false, got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"expected an integer, got {value!r}.")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"expected a number, got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail(f"expected a string, got {value!r}.")
        return str(value)
    raise TypeError(f"unsupported parameter type {tp!r} at {prefix}")


class _Mismatch(Exception):
    pass


def _raiser(what: str) -> _Mismatch:
    return _Mismatch(what)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def params_to_dict(obj: Any) -> Any:
    """JSON-ready plain data of a (nested) params dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # a field marked ``omit_if_default`` (a memory switch that is off) is left out, so adding such a
        # switch does not change the params.json, and so the bytes, of the models that do not use it
        return {f.name: params_to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_if_default") and getattr(obj, f.name) == _field_default(f))}
    if isinstance(obj, Mapping):
        return {str(k): params_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [params_to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def params_to_json(obj: Any) -> str:
    return json.dumps(params_to_dict(obj), indent=2, sort_keys=True) + "\n"
