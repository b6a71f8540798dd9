"""Atomic outputs and strict readers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmlab.artifacts import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    read_text_strict,
    stage_outputs,
)
from lmlab.errors import InputError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.json"
    atomic_write_json(target, {"b": 1, "a": float("nan")})
    atomic_write_json(target, {"b": 2, "a": 1.5})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": 2}
    assert list(target.parent.iterdir()) == [target]


def test_atomic_write_json_sorts_keys_and_maps_nan_to_null(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_json(target, {"z": float("inf"), "a": 1})
    assert target.read_text().index('"a"') < target.read_text().index('"z"')
    assert json.loads(target.read_text())["z"] is None


def test_atomic_dir_failure_keeps_old_and_cleans_temp(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("half")
        raise RuntimeError("crash")
    assert (target / "w.bin").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("v2")
    assert (target / "w.bin").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_stage_outputs_removes_every_output_on_failure(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "d"
    with pytest.raises(ValueError), stage_outputs([a, b]):
        atomic_write_text(a, "done")
        b.mkdir()
        raise ValueError("later step failed")
    assert not a.exists() and not b.exists()


def test_read_text_strict_names_byte_offset_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,cefr\nok,A1\ncaf\xe9,B1\n")
    with pytest.raises(InputError) as info:
        read_text_strict(path)
    message = str(info.value)
    assert "byte offset 19" in message and f"{path}:3:4" in message and "re-encode the file as utf-8." in message
    with pytest.raises(InputError, match="set 'ilm.data.encoding' to its encoding"):
        read_text_strict(path, encoding_key="ilm.data.encoding")
    assert read_text_strict(path, "latin-1").endswith("café,B1\n")


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ('{"a": 1}\n{"a": 2\n', 2, "not valid JSON"),
        ('{"a": 1}\n[1, 2]\n', 2, "expected a JSON object"),
        ('{"a": 1}\n\n{"b": 1}\n', 3, "missing field 'a'"),
        ('{"a": "x"}\n', 1, "must be int"),
    ],
)
def test_read_jsonl_errors_name_line(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_jsonl(path, required={"a": int})
    assert info.value.line == line and fragment in str(info.value)


def test_read_jsonl_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(InputError, match="no rows"):
        read_jsonl(path)
    os.remove(path)
    with pytest.raises(InputError, match="not found"):
        read_jsonl(path)


def test_outputs_get_normal_permissions(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "w").write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask
