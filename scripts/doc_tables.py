"""Result tables in README.md and docs/*.md, generated from the committed metrics files.

    python scripts/doc_tables.py --check    # exit 1 and name file:line of every table that differs
    python scripts/doc_tables.py --write    # regenerate every table in place

A table is the text between two markers; the opening marker says what to render:

    <!-- metrics-table: reports/metrics/ilm.json ppl digits=1 ci=yes corner="model \\ test level" -->
    | model \\ test level | A1 | ... |
    <!-- /metrics-table -->

Arguments: the metrics file (relative to the repository root), the dotted key prefix of the
table (``.`` = the whole file), then options (shell-quoted ``name=value``):

* ``digits=N``   decimals of floats (default 3);
* ``ci=yes``     add the 95% interval stored in the metrics file: ``<leaf>_ci_low/_ci_high`` next to
                 the number, or ``<first key>_ci.<rest>.{low,high}`` from the top level (the two
                 conventions of ``lmlab.report.intervals.interval_for``). Never computed here; a number
                 without a stored interval is shown alone (matrix) or with ``—`` (list);
* ``rows=a,b``   which rows, in this order (default: every key, intervals left out);
* ``cols=a,b``   which columns of a matrix, in this order (default: every inner key);
* ``headers=x,y`` the header row (default: ``key,value[,95% CI]`` or ``corner`` + the columns);
* ``corner=TEXT`` the top-left header cell of a matrix.

The shape follows the data: a prefix whose entries are dicts renders a matrix (rows = entries,
columns = their keys: ``ppl`` = model x test level; ``.`` of weighted.json = config x metric),
otherwise a two-column list (``specialization_gain`` = level, gain). Exit codes: 0 up to date
(or written), 1 a table differs (``--check``), 2 a broken marker or a missing file or key.
The interval rules and key lookup are the library's (:mod:`lmlab.report.intervals`), shared
with the summary and the review diff.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmlab.report.intervals import interval_for, is_interval_key, lookup

ROOT = Path(__file__).resolve().parents[1]
OPEN = re.compile(r"^\s*<!--\s*metrics-table:\s*(?P<args>.*?)\s*-->\s*$")
CLOSE = re.compile(r"^\s*<!--\s*/metrics-table\s*-->\s*$")
OPTIONS = {"digits", "ci", "rows", "cols", "headers", "corner"}
NO_CI = "—"


class MarkerError(Exception):
    """A marker that cannot be rendered; the message names ``file:line``."""


def _num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(interval: tuple[Any, Any], digits: int) -> str:
    return f"[{_num(interval[0], digits)}, {_num(interval[1], digits)}]"


def _list(option: str | None) -> list[str] | None:
    return None if option is None else [item.strip() for item in option.split(",") if item.strip()]


def render(args: str, root: Path = ROOT) -> list[str]:
    """The table lines for a marker's arguments (raises ``ValueError`` with the reason)."""
    try:
        words = shlex.split(args, posix=True)
    except ValueError as exc:
        raise ValueError(f"cannot parse marker arguments ({exc})") from exc
    if len(words) < 2:
        raise ValueError("expected `metrics-table: FILE PREFIX [name=value ...]`")
    file, prefix, options = words[0], words[1], {}
    for word in words[2:]:
        name, sep, value = word.partition("=")
        if not sep or name not in OPTIONS:
            raise ValueError(f"unknown option {word!r} (known: {', '.join(sorted(OPTIONS))})")
        options[name] = value
    path = root / file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {file} ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file} is not valid JSON ({exc.msg})") from exc
    base = [] if prefix == "." else prefix.split(".")
    node = lookup(data, base)
    if not isinstance(node, Mapping):
        raise ValueError(f"{file} has no dict at {prefix!r}")
    digits = int(options.get("digits", "3"))
    with_ci = options.get("ci", "no").lower() in ("yes", "true", "1")
    rows = _list(options.get("rows"))
    if rows is None:
        keys = [k for k in node if not is_interval_key(k)]
        matrix = any(isinstance(node[k], Mapping) for k in keys)
        rows = [k for k in keys if isinstance(node[k], Mapping) == matrix]
    missing = [r for r in rows if r not in node]
    if missing:
        raise ValueError(f"{file} has no {', '.join(f'{prefix}.{r}' for r in missing)}".replace("..", "."))
    matrix = any(isinstance(node[r], Mapping) for r in rows)
    if matrix and not all(isinstance(node[r], Mapping) for r in rows):
        raise ValueError("rows= mixes dicts and single numbers; use one table for each")

    def cell(parts: list[str], inline_ci: bool) -> list[str]:
        value = _num(lookup(data, parts), digits)
        if not with_ci:
            return [value]
        interval = interval_for(data, parts)
        if inline_ci:
            return [value if interval is None else f"{value} {_ci(interval, digits)}"]
        return [value, NO_CI if interval is None else _ci(interval, digits)]

    if matrix:
        cols = _list(options.get("cols"))
        if cols is None:
            cols = list(dict.fromkeys(c for r in rows for c in node[r] if not is_interval_key(c)))
        headers = [options.get("corner", ""), *cols]
        body = [[r, *(cell([*base, r, c], True)[0] if c in node[r] else "n/a" for c in cols)] for r in rows]
    else:
        headers = ["key", "value", "95% CI"] if with_ci else ["key", "value"]
        body = [[r, *cell([*base, r], False)] for r in rows]
    custom = _list(options.get("headers"))
    if custom is not None:
        if len(custom) != len(headers):
            raise ValueError(f"headers= has {len(custom)} names for {len(headers)} columns")
        headers = custom
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def process(path: Path, root: Path = ROOT) -> tuple[list[str], str]:
    """``(problems, new text)`` for one Markdown file; a problem is ``file:line: what differs``.

    Raises :class:`MarkerError` for a marker that cannot be rendered.
    """
    try:
        shown = path.relative_to(root)
    except ValueError:
        shown = path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        match = OPEN.match(line)
        i += 1
        if CLOSE.match(line):
            raise MarkerError(f"{shown}:{i}: closing marker without an opening one")
        if not match:
            continue
        start = i  # index of the first table line
        while i < len(lines) and not CLOSE.match(lines[i]):
            if OPEN.match(lines[i]):
                raise MarkerError(f"{shown}:{i + 1}: a metrics-table marker inside the one of line {start}")
            i += 1
        if i == len(lines):
            raise MarkerError(f"{shown}:{start}: no closing <!-- /metrics-table --> marker")
        try:
            table = render(match["args"], root)
        except ValueError as exc:
            raise MarkerError(f"{shown}:{start}: {exc}") from exc
        current = [text.rstrip("\n") for text in lines[start:i]]
        if current != table:
            diff = next((n for n, (a, b) in enumerate(zip(current, table)) if a != b), min(len(current), len(table)))
            found = current[diff] if diff < len(current) else "(end of table)"
            wanted = table[diff] if diff < len(table) else "(end of table)"
            problems.append(f"{shown}:{start + diff + 1}: differs from {match['args']}\n"
                            f"    file:      {found}\n    generated: {wanted}")
        out.extend(t + "\n" for t in table)
        out.append(lines[i])
        i += 1
    return problems, "".join(out)


def documents(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md under ``root``."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted(Path(p) for p in glob.glob(str(root / "docs" / "*.md")))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a table differs from its metrics file")
    mode.add_argument("--write", action="store_true", help="regenerate the tables in place")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (metrics paths are relative to it)")
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md and docs/*.md)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    problems: list[str] = []
    for path in [p.resolve() for p in args.files] or documents(root):
        try:
            found, text = process(path, root)
        except MarkerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.write and found:
            path.write_text(text, encoding="utf-8")
            print(f"updated {path}")
        problems += found
    if args.check and problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} table(s) differ from the metrics; run `python scripts/doc_tables.py --write`.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
