"""Atomic outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lmlab.artifacts import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    stage_outputs,
)


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


def test_outputs_get_normal_permissions(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "w").write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask
