"""Strict params loading: types, unknown keys, positions in errors, top-level keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from lmlab.config import load_mapping, load_params, load_value, params_to_dict
from lmlab.errors import ParamsError


@dataclass(frozen=True)
class Inner:
    size: int = 2
    name: str = "x"


@dataclass(frozen=True)
class Outer:
    lr: float
    mode: Literal["a", "b"] = "a"
    levels: tuple[str, ...] = ("A1",)
    inner: Inner = field(default_factory=Inner)
    note: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_loads_nested_section_with_types_and_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 7\nfam:\n  stage:\n    lr: 1\n    mode: b\n    levels: [A1, B2]\n    inner: {size: 4}\n")
    params = load_params(Outer, path, "fam.stage", top_level=("seed",))
    assert params == Outer(lr=1.0, mode="b", levels=("A1", "B2"), inner=Inner(size=4), seed=7)
    assert isinstance(params.lr, float)
    assert params_to_dict(params)["inner"] == {"size": 4, "name": "x"}


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("fam:\n  lr: 1\n  lrr: 2\n", "fam.lrr", "unknown parameter"),
        ("fam:\n  lr: fast\n", "fam.lr", "expected a number"),
        ("fam:\n  lr: 1\n  mode: c\n", "fam.mode", "must be one of"),
        ("fam:\n  lr: 1\n  inner: {size: 2.5}\n", "fam.inner.size", "expected an integer"),
        ("fam:\n  lr: 1\n  inner: {bogus: 1}\n", "fam.inner.bogus", "unknown parameter"),
        ("fam:\n  lr: -1\n", "fam.lr", "must be > 0"),
        ("fam:\n  mode: a\n", "fam.lr", "required parameter is missing"),
        ("fam:\n  lr: 1\n  levels: A1\n", "fam.levels", "expected a list"),
        ("fam:\n  lr: true\n", "fam.lr", "expected a number"),
    ],
)
def test_bad_params_name_key_and_position(tmp_path: Path, body: str, key: str, fragment: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ParamsError) as info:
        load_params(Outer, path, "fam")
    message = str(info.value)
    assert f"key '{key}'" in message
    assert fragment in message
    assert str(path) in message


def test_unknown_key_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "fam:\n  lr: 1\n  typo_key: 3\n")
    with pytest.raises(ParamsError) as info:
        load_params(Outer, path, "fam")
    assert info.value.line == 3 and info.value.column == 3
    assert f"{path}:3:3" in str(info.value)


def test_missing_section_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="section is missing"):
        load_params(Outer, write(tmp_path, "other: {}\n"), "fam")
    with pytest.raises(ParamsError, match="invalid YAML") as info:
        load_params(Outer, write(tmp_path, "fam:\n  lr: [1, 2\n"), "fam")
    assert info.value.line is not None


def test_top_level_key_must_not_be_repeated_in_section(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nfam:\n  lr: 1\n  seed: 2\n")
    with pytest.raises(ParamsError, match="top-level"):
        load_params(Outer, path, "fam", top_level=("seed",))


def test_repository_params_file_parses(repo_root: Path) -> None:
    from lmlab.config import read_params_file

    data = read_params_file(repo_root / "params.yaml")
    assert isinstance(data["seed"], int)
    assert isinstance(data["gamma"], float), "gamma must stay a float so `-S gamma=4.0` keeps its type"


# ----------------------------------------------------------------------------- load_value

VALUES = "seed: 7\ngamma: 4.0\nfam:\n  judge: none\n  fractions: {a: 0.5, b: 1}\n  inner: {size: 3}\n"


@pytest.mark.parametrize(("key", "tp", "expected"), [
    ("seed", int, 7),
    ("gamma", float, 4.0),
    ("fam.judge", Literal["minilm", "none"], "none"),
    ("fam.fractions", dict[str, float], {"a": 0.5, "b": 1.0}),
    ("fam.inner", Inner, Inner(size=3)),
])
def test_load_value_types(tmp_path: Path, key: str, tp: object, expected: object) -> None:
    value = load_value(write(tmp_path, VALUES), key, tp)
    if isinstance(expected, dict):
        assert dict(value) == expected and all(isinstance(v, float) for v in value.values())
    else:
        assert value == expected and type(value) is type(expected)


def test_load_value_int_becomes_float(tmp_path: Path) -> None:
    value = load_value(write(tmp_path, "gamma: 4\n"), "gamma", float)
    assert value == 4.0 and isinstance(value, float)


@pytest.mark.parametrize(("body", "key", "tp", "position", "fragment"), [
    ("a: 1\nseed: true\n", "seed", int, "2:1", "expected an integer"),
    ("gamma: yes\n", "gamma", float, "1:1", "expected a number"),
    ("gamma: four\n", "gamma", float, "1:1", "expected a number"),
    ("seed: 1.5\n", "seed", int, "1:1", "expected an integer"),
    ("fam:\n  x: 1\n  judge: bert\n", "fam.judge", Literal["minilm", "none"], "3:3", "must be one of 'minilm'"),
    ("fam:\n  fractions: {a: half}\n", "fam.fractions", dict[str, float], "2:3", "expected a number"),
    ("fam:\n  other: 1\n", "fam.judge", str, "1:1", "missing"),
])
def test_load_value_errors_name_file_position_and_key(tmp_path: Path, body: str, key: str, tp: object,
                                                      position: str, fragment: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ParamsError) as info:
        load_value(path, key, tp, hint="e.g. set it")
    message = str(info.value)
    assert f"{path}:{position}, key '{key}'" in message and fragment in message, message


def test_load_value_of_a_dataclass_names_the_nested_key(tmp_path: Path) -> None:
    path = write(tmp_path, "fam:\n  inner: {size: 1, bogus: 2}\n")
    with pytest.raises(ParamsError, match=r"params\.yaml:2:20, key 'fam\.inner\.bogus': unknown parameter"):
        load_value(path, "fam.inner", Inner)


def test_load_value_hint_and_missing_section(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as info:
        load_value(write(tmp_path, "gamma: four\n"), "gamma", float, hint="e.g. dvc exp run -S gamma=4.0")
    assert "Fix: e.g. dvc exp run -S gamma=4.0" in str(info.value)
    with pytest.raises(ParamsError, match="section is missing"):
        load_value(write(tmp_path, "seed: 1\n"), "fam.judge", str)


def test_load_value_check_is_reported_at_the_key(tmp_path: Path) -> None:
    def positive(value: float) -> None:
        if not value > 0:
            raise ParamsError(f"must be > 0, got {value!r}.", hint="use a positive weight")

    assert load_value(write(tmp_path, "w: {gamma: 2}\n"), "w.gamma", float, check=positive) == 2.0
    path = write(tmp_path, "seed: 0\nw:\n  gamma: -1\n")
    with pytest.raises(ParamsError) as info:
        load_value(path, "w.gamma", float, check=positive)
    assert info.value.line == 3 and info.value.column == 3 and info.value.key == "w.gamma"
    assert "must be > 0, got -1.0" in str(info.value) and "use a positive weight" in str(info.value)


# ----------------------------------------------------------------------------- load_mapping


@dataclass(frozen=True)
class Entry:
    fraction: str
    variant: Literal["accept", "reject"] = "accept"
    seed: int = 0


def test_load_mapping_builds_every_entry_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 3\nconfigs:\n  b: {fraction: f1}\n  a: {fraction: f2, variant: reject}\n")
    entries = load_mapping(Entry, path, "configs", top_level=("seed",))
    assert list(entries) == ["b", "a"]
    assert entries["a"] == Entry("f2", "reject", seed=3)
    with pytest.raises(TypeError):
        entries["c"] = Entry("f3")  # type: ignore[index]


@pytest.mark.parametrize(("body", "key", "position", "fragment"), [
    ("configs:\n  a: {fraction: f1}\n  b: {fraction: f1, variant: both}\n", "configs.b.variant", "3:21",
     "must be one of"),
    ("configs:\n  a: {fraction: f1, typo: 1}\n", "configs.a.typo", "2:21", "unknown parameter"),
    ("configs:\n  a: {variant: reject}\n", "configs.a.fraction", None, "required parameter is missing"),
    ("configs:\n  a: f1\n", "configs.a", "2:3", "expected a mapping"),
    ("x: 1\nconfigs: {}\n", "configs", "2:1", "expected a mapping of names"),
    ("configs:\n  a: {fraction: f1, seed: 2}\n", "configs.a.seed", "2:21", "top-level"),
])
def test_load_mapping_errors(tmp_path: Path, body: str, key: str, position: str | None, fragment: str) -> None:
    path = write(tmp_path, "seed: 0\n" + body)
    with pytest.raises(ParamsError) as info:
        load_mapping(Entry, path, "configs", top_level=("seed",))
    message = str(info.value)
    assert f"key '{key}'" in message and fragment in message, message
    if position:
        line, col = position.split(":")
        assert f"{path}:{int(line) + 1}:{col}, key" in message, message


def test_load_mapping_check_locates_the_entry_key(tmp_path: Path) -> None:
    def known_fractions(entries: object) -> None:
        for name, entry in entries.items():  # type: ignore[attr-defined]
            if entry.fraction not in ("f1",):
                raise ParamsError(f"unknown fraction '{entry.fraction}'.", key=f"configs.{name}.fraction")

    path = write(tmp_path, "configs:\n  a: {fraction: f1}\n  b:\n    variant: reject\n    fraction: f9\n")
    with pytest.raises(ParamsError) as info:
        load_mapping(Entry, path, "configs", check=known_fractions)
    assert (info.value.line, info.value.column, info.value.key) == (5, 5, "configs.b.fraction")
    assert f"{path}:5:5" in str(info.value)
