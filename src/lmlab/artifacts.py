"""Atomic outputs.

Every stage writes each output to a temporary sibling and moves it into place with
``os.replace`` only once it is complete, so DVC never sees a half-written out. On a
failure :func:`stage_outputs` also removes whatever outputs of the stage exist.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "json_ready",
    "remove_path",
    "stage_outputs",
]


def remove_path(path: str | Path) -> None:
    """Delete a file or a directory tree if it exists."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_sibling(path: Path, directory: bool) -> Path:
    """A temporary sibling with normal permissions (mkstemp/mkdtemp alone would leave 0600/0700)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        return tmp
    fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; replace ``path`` with it on success."""
    path = Path(path)
    tmp = _temp_sibling(path, directory=False)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; swap it into place on success."""
    path = Path(path)
    tmp = _temp_sibling(path, directory=True)
    try:
        yield tmp
        if path.exists():
            trash = _temp_sibling(path, directory=True)
            os.replace(path, trash / "old")
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_ready(obj: Any) -> Any:
    """Make ``obj`` JSON-serialisable: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | Path, obj: Any, *, indent: int = 2) -> None:
    """Write JSON with sorted keys (stable diffs) atomically."""
    text = json.dumps(json_ready(obj), indent=indent, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_text(path, text)


@contextlib.contextmanager
def stage_outputs(paths: Sequence[str | Path]) -> Iterator[None]:
    """On any exception inside the block, delete every listed output, then re-raise."""
    try:
        yield
    except BaseException:
        for p in paths:
            remove_path(p)
        raise
