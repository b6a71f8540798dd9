"""Strict readers of user-supplied input files.

The instruction JSONL, the decisions JSONL, the LM text and the texts tokenizers are trained on
go through these readers, so a bad byte or a bad row is reported as one
:class:`~lmlab.errors.InputError` naming the file, line and column and how to fix it (the corpus
CSV has its own streaming reader, :mod:`lmlab.ilm.splitting`). Stages that read inputs list this
module as a dependency in ``dvc.yaml``: a change to how inputs are read re-runs them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmlab.errors import InputError

__all__ = ["read_jsonl", "read_text_strict"]


def read_text_strict(path: str | Path, encoding: str = "utf-8", encoding_key: str | None = None) -> str:
    """Read a text file; a decoding error names the byte offset, line and column.

    ``encoding_key`` is the params key that sets the encoding, if the calling stage has one.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found.", path=path, hint="check the path parameter.")
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            f"not valid {encoding}: byte 0x{data[exc.start]:02x} at byte offset {exc.start} ({exc.reason}).",
            path=path,
            line=line,
            column=column,
            hint=f"re-encode the file as {encoding}"
            + (f", or set '{encoding_key}' to its encoding (e.g. latin-1)." if encoding_key else "."),
        ) from exc


def read_jsonl(
    path: str | Path,
    required: dict[str, type | tuple[type, ...]] | None = None,
    encoding: str = "utf-8",
) -> list[dict[str, Any]]:
    """Read a JSON-lines file of objects; errors name the file, line and column.

    ``required`` maps field names to the accepted Python types. Blank lines are skipped.
    """
    text = read_text_strict(path, encoding)
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg}).", path=path, line=lineno, column=exc.colno,
                hint="every line must hold one JSON object.",
            ) from exc
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}.", path=path, line=lineno, column=1)
        for field, types_ in (required or {}).items():
            if field not in obj:
                raise InputError(f"missing field '{field}'.", path=path, line=lineno, column=1,
                                 hint=f"every row needs the fields {sorted(required or {})}.")
            if not isinstance(obj[field], types_):
                expected = types_.__name__ if isinstance(types_, type) else "/".join(t.__name__ for t in types_)
                raise InputError(
                    f"field '{field}' must be {expected}, got {type(obj[field]).__name__}.",
                    path=path, line=lineno, column=1,
                )
        rows.append(obj)
    if not rows:
        raise InputError("the file holds no rows.", path=path, hint="point the parameter at a non-empty JSONL file.")
    return rows
