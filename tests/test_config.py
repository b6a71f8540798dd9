"""Strict params loading: types, unknown keys, positions in errors, top-level keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from lmlab.config import load_params, params_to_dict
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
