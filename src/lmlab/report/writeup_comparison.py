"""The summary's "write-up comparison" section: each write-up's numbers beside lmlab's.

Families write their rows (:mod:`lmlab.writeup`) to ``reports/writeup/<family>.json``; this module
only renders them, so the report stays independent of the families. A row whose protocol cannot
run at embedded scale shows why (``n/a at embedded scale``) instead of a number, and a stated
success criterion shows PASS/FAIL, so a reader sees at a glance which write-up claims the
embedded default reproduces, which it contradicts and which it cannot test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lmlab.writeup import WriteupRow, read_rows

__all__ = ["WriteupComparison", "criteria_counts", "render_comparison"]

TITLES = {
    "ilm": "ILM (write-ups 000 and 001)",
    "ensemble": "Ensemble (write-up 002)",
    "weighted": "Weighted loss (write-up 003)",
    "monotonic": "Monotonic (write-up 004)",
}


class WriteupComparison(dict):
    """``{family: [WriteupRow, ...]}`` plus the write-up each family follows and the file it came from."""

    def __init__(self) -> None:
        super().__init__()
        self.writeups: dict[str, str] = {}
        self.paths: dict[str, str] = {}

    @classmethod
    def from_payloads(cls, payloads: Mapping[str, tuple[str, Mapping[str, Any]]]) -> WriteupComparison:
        """``{family: (path, payload)}`` -> comparison (payloads as written by ``lmlab.writeup.write_rows``)."""
        comparison = cls()
        for family, (path, payload) in payloads.items():
            comparison[family] = read_rows(payload)
            comparison.writeups[family] = str(payload.get("writeup", ""))
            comparison.paths[family] = path
        return comparison


def _value(value: float | str | None) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return "not measured"
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def _verdict(row: WriteupRow) -> str:
    return "" if row.passed is None else ("PASS" if row.passed else "FAIL")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def criteria_counts(rows: Sequence[WriteupRow]) -> tuple[int, int]:
    """``(passed, failed)`` over the rows that carry a success criterion."""
    verdicts = [row.passed for row in rows if row.passed is not None]
    return sum(verdicts), len(verdicts) - sum(verdicts)


def render_comparison(comparison: WriteupComparison) -> list[str]:
    """Markdown lines of the section (empty when no family wrote rows)."""
    if not comparison:
        return []
    lines = [
        "## Write-up comparison",
        "",
        "Every number a lab write-up (`../shared/seeds/`) reports that lmlab also measures, beside lmlab's value "
        "from the same protocol at the scale this run used. `n/a at embedded scale`: the protocol needs a GPU, a "
        "real checkpoint or the lab's real data. PASS/FAIL: the write-up's own success criterion applied to lmlab's "
        "value. Numbers of tiny models on synthetic data test the pipeline, not the write-up's science.",
        "",
    ]
    for family, rows in comparison.items():
        passed, failed = criteria_counts(rows)
        title = TITLES.get(family, family)
        criteria = f"; criteria: {passed} pass, {failed} fail" if passed + failed else ""
        lines += [f"**{title}** (`{comparison.paths.get(family, '')}`{criteria})", ""]
        header = ["quantity", "write-up", "lmlab", "criterion", "source", "note"]
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for row in rows:
            cells = [row.quantity, row.writeup, _value(row.lmlab), _verdict(row),
                     f"`{row.source}`" if row.source else "", row.note]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return lines
