"""Write-up comparison rows: a number a lab write-up reports beside lmlab's value from the same protocol.

Each family knows its own write-up (``lmlab/<family>/writeup.py`` holds the write-up's numbers as
constants and builds rows from the family's metrics); the cross-family report only reads the rows
back from ``reports/writeup/<family>.json`` and renders them, so the report never imports a family.
Values stay strings where the write-up gives a range or a qualitative statement ("~18-20",
"33%"); lmlab's value is a number when it was measured, or a reason when it was not
(:data:`NOT_AT_EMBEDDED` for protocol pieces that need a GPU or the lab's real data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmlab.artifacts import atomic_write_json

__all__ = ["NOT_AT_EMBEDDED", "WriteupRow", "read_rows", "rows_payload", "write_rows"]

NOT_AT_EMBEDDED = "n/a at embedded scale"


@dataclass(frozen=True)
class WriteupRow:
    """One comparable quantity.

    ``writeup`` is the write-up's figure as it states it; ``lmlab`` the measured value (a float,
    formatted by the renderer) or a string saying why there is none; ``passed`` is set when the
    write-up states a success criterion for the quantity (None: no criterion).
    """

    quantity: str
    writeup: str
    lmlab: float | str | None
    source: str = ""
    note: str = ""
    passed: bool | None = None

    def __post_init__(self) -> None:
        if not self.quantity:
            raise ValueError("WriteupRow.quantity must not be empty")
        if isinstance(self.lmlab, float) and not math.isfinite(self.lmlab):
            object.__setattr__(self, "lmlab", None)


def rows_payload(family: str, writeup: str, rows: Sequence[WriteupRow]) -> dict[str, Any]:
    """The JSON document of one family's comparison (``writeup`` names the write-up file)."""
    return {"family": family, "writeup": writeup, "rows": [asdict(row) for row in rows]}


def write_rows(path: str | Path, family: str, writeup: str, rows: Sequence[WriteupRow]) -> None:
    """Write one family's comparison atomically."""
    atomic_write_json(path, rows_payload(family, writeup, rows))


def read_rows(payload: Mapping[str, Any]) -> list[WriteupRow]:
    """Rows back from :func:`rows_payload`'s document (unknown fields are an error)."""
    rows: Iterable[Mapping[str, Any]] = payload.get("rows", [])
    return [WriteupRow(**dict(row)) for row in rows]
