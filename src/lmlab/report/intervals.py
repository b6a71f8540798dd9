"""Where a metric's 95% interval lives, and a metrics diff that tells an effect from noise.

Families store intervals next to the numbers they qualify, in one of two shapes:

1. flat siblings ``<leaf>_ci_low`` / ``<leaf>_ci_high`` in the same dict as the leaf
   (``ppl_gap_pct_ci_low``; ``baseline.accuracy_ci_low``);
2. a parallel tree ``<top>_ci.<rest>.low/high`` from the top level
   (``specialization_gain_ci.A1.low``; ``accuracy_ci.causal.low``; ``ppl_ci.A1.B2.low``).

:func:`interval_for` finds either, so the summary, the seed report and the review diff agree on
which number has which interval. :func:`noise_aware_diff` compares two revisions' metrics and
marks a change as outside the old interval (an effect a reviewer should look at) or inside it
(within the test-item noise of the old result).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["lookup", "interval_for", "is_interval_key", "metric_leaves", "MetricChange", "noise_aware_diff",
           "render_diff", "render_listing"]

CI_SUFFIXES = ("_ci_low", "_ci_high")


def _parts(path: str | Sequence[str]) -> list[str]:
    return path.split(".") if isinstance(path, str) else [str(p) for p in path]


def lookup(data: Mapping[str, Any], path: str | Sequence[str], default: Any = None) -> Any:
    """The value at dotted ``path`` (or a sequence of keys) in nested ``data``, else ``default``."""
    node: Any = data
    for key in _parts(path):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def interval_for(data: Mapping[str, Any], path: str | Sequence[str]) -> tuple[Any, Any] | None:
    """The ``(low, high)`` stored for the metric at ``path`` (dotted or a key sequence), or None.

    Rule 1 (flat siblings) is tried before rule 2 (parallel tree). A bound may be None (JSON null:
    the interval was undefined, e.g. no finite resample); None is returned only when the file has
    no interval for ``path`` at all, so a reader sees "undefined" rather than "not computed".
    """
    parts = _parts(path)
    if not parts:
        return None
    parent = lookup(data, parts[:-1])
    low_key, high_key = (parts[-1] + suffix for suffix in CI_SUFFIXES)
    if isinstance(parent, Mapping) and low_key in parent and high_key in parent:
        return parent[low_key], parent[high_key]
    tree = lookup(data, [parts[0] + "_ci", *parts[1:]])
    if isinstance(tree, Mapping) and "low" in tree and "high" in tree:
        return tree["low"], tree["high"]
    return None


def is_interval_key(key: str | Sequence[str]) -> bool:
    """True for the interval bookkeeping keys (``x_ci_low``, ``x_ci_high``, a ``<top>_ci`` tree).

    Takes one key or a dotted path; lists of models, configs or metrics skip these keys.
    """
    parts = _parts(key)
    return parts[-1].endswith(CI_SUFFIXES) or parts[0].endswith("_ci")


def metric_leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted leaves of a metrics dict, as ``dvc metrics show`` prints them, intervals left out."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(metric_leaves(value, dotted))
        elif not is_interval_key(dotted):
            out[dotted] = value
    return out


@dataclass(frozen=True)
class MetricChange:
    """One metric that differs between two revisions, judged against the old interval."""

    path: str
    key: str
    old: Any
    new: Any
    old_interval: tuple[Any, Any] | None
    new_interval: tuple[Any, Any] | None

    @property
    def verdict(self) -> str:
        old, new = _number(self.old), _number(self.new)
        if old is None or new is None:
            return "added" if self.old is None else "removed" if self.new is None else "changed"
        low, high = self.old_interval or (None, None)
        low, high = _number(low), _number(high)
        if low is None or high is None:
            return "no interval"
        return "OUTSIDE old 95% CI" if not low <= new <= high else "within old 95% CI (noise)"


def noise_aware_diff(old: Mapping[str, Mapping[str, Any]],
                     new: Mapping[str, Mapping[str, Any]]) -> list[MetricChange]:
    """Every changed metric of ``{metrics file: content}`` at two revisions, with both intervals."""
    changes = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path, {}), new.get(path, {})
        leaves_before, leaves_after = metric_leaves(before), metric_leaves(after)
        for key in sorted(set(leaves_before) | set(leaves_after)):
            a, b = leaves_before.get(key), leaves_after.get(key)
            if a == b:
                continue
            changes.append(MetricChange(path, key, a, b, interval_for(before, key), interval_for(after, key)))
    return changes


def _fmt(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "—" if value is None else str(value)
    return f"{number:.4g}"


def render_listing(files: Mapping[str, Mapping[str, Any]]) -> str:
    """Every metric of ``{metrics file: content}``, one per line, with its 95% interval beside it.

    ``dvc metrics show`` prints one row per file and one column per key: a few dozen keys already
    overflow any terminal (issue 17). This is the same data turned on its side, as ``dvc metrics
    diff`` does: a block per file, ``key  value  [low, high]``, intervals folded into their metric's
    line instead of taking columns of their own.
    """
    lines: list[str] = []
    for path in files:
        leaves = metric_leaves(files[path])
        width = max((len(k) for k in leaves), default=0)
        lines.append(path)
        for key, value in leaves.items():
            interval = interval_for(files[path], key)
            ci = f"  [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else ""
            lines.append(f"  {key:<{width}}  {_fmt(value):>9}{ci}")
        lines.append("")
    return "\n".join(lines)


def render_diff(changes: list[MetricChange], old_rev: str, new_rev: str) -> str:
    """A Markdown table for the review: effects first, then changes within the noise."""
    if not changes:
        return f"No metric differs between {old_rev} and {new_rev}.\n"
    order = {"OUTSIDE old 95% CI": 0, "no interval": 1, "added": 2, "removed": 2, "changed": 2}
    rows = sorted(changes, key=lambda c: (order.get(c.verdict, 3), c.path, c.key))
    effects = sum(c.verdict.startswith("OUTSIDE") for c in changes)
    noise = sum(c.verdict.startswith("within") for c in changes)
    lines = [f"{len(changes)} metrics differ between {old_rev} and {new_rev}: {effects} outside the old "
             f"95% interval, {noise} within it, {len(changes) - effects - noise} without an interval.", "",
             f"| file | key | {old_rev} | {new_rev} | change | old 95% CI | verdict |", "|---|---|---|---|---|---|---|"]
    for c in rows:
        delta = (_fmt(_number(c.new) - _number(c.old))  # type: ignore[operator]
                 if _number(c.old) is not None and _number(c.new) is not None else "—")
        interval = f"[{_fmt(c.old_interval[0])}, {_fmt(c.old_interval[1])}]" if c.old_interval else "—"
        lines.append(f"| {c.path} | `{c.key}` | {_fmt(c.old)} | {_fmt(c.new)} | {delta} | {interval} | {c.verdict} |")
    return "\n".join(lines) + "\n"
