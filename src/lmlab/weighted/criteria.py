"""The lab's 19-run grid and the write-up's success criteria, each computed with its evidence.

The weighted-loss write-up (seed 003, "Success Criteria") calls the experiment successful if
"3. Metrics show monotonic gamma effects (within variant+proportion); 4. Predicted acceptance
rates span 30-70% range; 5. Accuracy remains >60% for most configurations", after "1. All 19
training jobs complete" and "2. All 19 inference jobs produce valid predictions". Each is a
:class:`Criterion` here: pass/fail (None when the runs cannot decide it) plus the numbers that
decide it, so a report shows why, not just a verdict.

Readings (the write-up gives only the sentences above):

* *monotone*: within a (training set, variant) group, ordered by gamma, predicted acceptance never
  moves against the theory's direction (up for ``accept``, down for ``reject``; see
  :mod:`lmlab.weighted.report`) and ends strictly in it. A gamma = 1 run on the same set (the
  baseline) belongs to both variants' groups; a group needs two gammas to be judged.
* *span 30-70 %*: the acceptance rates cover the band: the lowest run is at or below its low end
  and the highest at or above its high end (spec notes B.4: "min/max acceptance across runs
  covering [0.30, 0.70]"). Both halves are reported.
* *most*: more than ``most_share`` (default one half) of the runs have accuracy > ``min_accuracy``.
* *valid predictions*: no generated answer without a parseable decision (``gen_unknowns``).

Input is a frame with one row per run (config, gamma): columns ``config``, ``variant``,
``accept_fraction``, ``gamma``, ``acceptance_rate``, ``accuracy`` and optionally ``gen_unknowns``.
Averaging seeds is the caller's business (:func:`lmlab.weighted.report.seed_means`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from lmlab.weighted.params import GridParams, WeightedConfig

__all__ = ["GridPoint", "Criterion", "grid_points", "select_grid", "gamma_groups", "fraction_label", "odds_label",
           "monotone_gamma_effect", "acceptance_span", "accuracy_for_most", "valid_predictions", "grid_complete",
           "evaluate_criteria", "criteria_markdown", "REQUIRED"]

REQUIRED = ("config", "variant", "accept_fraction", "gamma", "acceptance_rate", "accuracy")
"""Columns every criterion needs."""
_DIRECTION = {"accept": 1, "reject": -1}


@dataclass(frozen=True)
class GridPoint:
    """One run of the grid: which config, trained on which set, at which class weight.

    ``swept`` is False for a config with a fixed class weight (the baseline): its gamma is not a
    value the sweep sets.
    """

    config: str
    set: str
    variant: str
    gamma: float
    swept: bool = True


@dataclass(frozen=True)
class Criterion:
    """One success criterion: the write-up's words, the verdict and the numbers behind it.

    ``passed`` is None when the runs cannot decide it (e.g. no group has two gammas);
    ``value`` is the headline number (a share, a rate or a count); ``summary`` a one-line account
    of the evidence; ``evidence`` the full detail (per group, per run).
    """

    name: str
    writeup: str
    passed: bool | None
    value: float | None
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_points(configs: Mapping[str, WeightedConfig], grid: GridParams, fixed_gammas: Mapping[str, float]
                ) -> list[GridPoint]:
    """The grid's runs: every config reading ``gamma`` at each of its set's ``grid.gammas``, and every
    config with a fixed class weight (``fixed_gammas[name]``: the baseline's ``weighted.baseline_gamma``)
    once. A swept config whose set has no gammas in the grid is not part of it.
    """
    points = []
    for name, cfg in configs.items():
        if name in fixed_gammas:
            points.append(GridPoint(name, cfg.set, cfg.variant, float(fixed_gammas[name]), swept=False))
        else:
            points.extend(GridPoint(name, cfg.set, cfg.variant, float(g)) for g in (grid.gammas or {}).get(cfg.set, ()))
    return points


def _key(config: Any, gamma: Any) -> tuple[str, float]:
    return str(config), round(float(gamma), 6)


def select_grid(frame: pd.DataFrame, points: Sequence[GridPoint]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs on the grid, runs outside it), matched on (config, gamma)."""
    wanted = {_key(p.config, p.gamma) for p in points}
    inside = frame.apply(lambda r: _key(r["config"], r["gamma"]) in wanted, axis=1) if len(frame) else []
    mask = pd.Series(inside, index=frame.index, dtype=bool)
    return frame[mask], frame[~mask]


def odds_label(q: float) -> str:
    """Accept:reject odds of an accept fraction, as the sets are named: 1/3 -> ``1:2``, 2/3 -> ``2:1``."""
    for accept, reject in ((1.0, (1 - q) / q), (q / (1 - q), 1.0)):
        if abs(accept - round(accept)) < 1e-6 and abs(reject - round(reject)) < 1e-6:
            return f"{round(accept)}:{round(reject)}"
    return f"{q:.3g} accepted"


def fraction_label(q: float) -> str:
    """``1/3`` for an accept fraction that is a unit fraction, else 3 significant digits."""
    inv = 1.0 / q
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-6 else f"{q:.3g}"


def gamma_groups(frame: pd.DataFrame) -> list[tuple[float, str, pd.DataFrame]]:
    """(accept fraction, variant, runs sorted by gamma) groups; a gamma = 1 run at the same fraction joins both
    variants (up-weighting either class by 1 is the same loss)."""
    out = []
    for q in sorted(frame["accept_fraction"].unique(), reverse=True):
        at_q = frame[frame["accept_fraction"] == q]
        neutral = at_q[at_q["gamma"] == 1.0]
        for variant in ("accept", "reject"):
            group = pd.concat([neutral, at_q[(at_q["variant"] == variant) & (at_q["gamma"] != 1.0)]])
            group = group.drop_duplicates(subset=["gamma"]).sort_values("gamma")
            out.append((q, variant, group))
    return out


def _check_frame(frame: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"criteria need columns {missing}")
    if frame.duplicated(subset=["config", "gamma"]).any():
        raise ValueError("criteria need one row per (config, gamma): average seeds first (seed_means)")


def _run(row: Mapping[str, Any]) -> str:
    return f"{row['config']}@gamma={float(row['gamma']):g}"


def monotone_gamma_effect(frame: pd.DataFrame) -> Criterion:
    """Write-up criterion 3, per (training set, variant) group with at least two gammas."""
    _check_frame(frame)
    groups: dict[str, dict[str, Any]] = {}
    for q, variant, group in gamma_groups(frame):
        if group["gamma"].nunique() < 2:
            continue
        sign = _DIRECTION[variant]
        rates = [float(v) for v in group["acceptance_rate"]]
        steps = [b - a for a, b in zip(rates, rates[1:])]
        monotone = all(sign * s >= 0 for s in steps) and sign * (rates[-1] - rates[0]) > 0
        observed = "up" if rates[-1] > rates[0] else "down" if rates[-1] < rates[0] else "flat"
        groups[f"{odds_label(q)}/{variant}"] = {
            "gammas": [float(g) for g in group["gamma"]], "acceptance": rates, "configs": list(group["config"]),
            "expected": "up" if sign > 0 else "down", "observed": observed, "monotone": monotone}
    n_ok = sum(g["monotone"] for g in groups.values())
    failed = [name for name, g in groups.items() if not g["monotone"]]
    summary = (f"{n_ok} of {len(groups)} (set, variant) groups monotone in the predicted direction"
               + (f"; not: {', '.join(failed)}" if failed else ""))
    return Criterion("monotone_gamma_effect", "Metrics show monotonic gamma effects (within variant+proportion)",
                     None if not groups else n_ok == len(groups), n_ok / len(groups) if groups else None,
                     summary if groups else "no (set, variant) group has two gammas", {"groups": groups})


def acceptance_span(frame: pd.DataFrame, band: tuple[float, float] = (0.3, 0.7)) -> tuple[Criterion, Criterion]:
    """Write-up criterion 4 as its two halves: the lowest run reaches the band's low end, the highest its high end."""
    _check_frame(frame)
    low, high = band
    lowest = frame.loc[frame["acceptance_rate"].idxmin()]
    highest = frame.loc[frame["acceptance_rate"].idxmax()]
    within = frame[(frame["acceptance_rate"] >= low) & (frame["acceptance_rate"] <= high)]
    evidence = {"band": [low, high], "min": float(lowest["acceptance_rate"]), "min_run": _run(lowest),
                "max": float(highest["acceptance_rate"]), "max_run": _run(highest),
                "n_runs": len(frame), "n_within_band": len(within),
                "runs": {_run(r): float(r["acceptance_rate"]) for _, r in frame.iterrows()}}
    words = f"Predicted acceptance rates span {low:.0%}-{high:.0%} range"
    return (Criterion("acceptance_span_low", words, bool(evidence["min"] <= low), evidence["min"],
                      f"lowest acceptance {evidence['min']:.3f} ({evidence['min_run']}); needs <= {low:g}", evidence),
            Criterion("acceptance_span_high", words, bool(evidence["max"] >= high), evidence["max"],
                      f"highest acceptance {evidence['max']:.3f} ({evidence['max_run']}); needs >= {high:g}", evidence))


def accuracy_for_most(frame: pd.DataFrame, min_accuracy: float = 0.6, most_share: float = 0.5) -> Criterion:
    """Write-up criterion 5: accuracy > ``min_accuracy`` for more than ``most_share`` of the runs."""
    _check_frame(frame)
    above = frame["accuracy"] > min_accuracy
    share = float(above.mean())
    below = {_run(r): float(r["accuracy"]) for _, r in frame[~above].iterrows()}
    return Criterion("accuracy_for_most", f"Accuracy remains >{min_accuracy:.0%} for most configurations",
                     share > most_share, share,
                     f"{int(above.sum())} of {len(frame)} runs above {min_accuracy:g} (needs more than "
                     f"{most_share:.0%})" + (f"; at or below: {', '.join(below)}" if below else ""),
                     {"min_accuracy": min_accuracy, "most_share": most_share, "n_above": int(above.sum()),
                      "n_runs": len(frame), "below": below, "min": float(frame["accuracy"].min())})


def valid_predictions(frame: pd.DataFrame) -> Criterion:
    """Write-up criterion 2: every generated answer parses to a decision (``gen_unknowns`` = 0 everywhere)."""
    words = "All inference jobs produce valid predictions"
    if "gen_unknowns" not in frame or frame["gen_unknowns"].isna().all():
        return Criterion("valid_predictions", words, None, None, "no generation counts (gen_unknowns) in the runs")
    unknowns = frame["gen_unknowns"].fillna(0).astype(float)  # a mean over seeds may be fractional
    bad = {_run(r): float(u) for (_, r), u in zip(frame.iterrows(), unknowns) if u > 0}
    return Criterion("valid_predictions", words, not bad, float(unknowns.sum()),
                     f"{unknowns.sum():g} unparseable generations over {len(frame)} runs"
                     + (f" ({', '.join(f'{k}: {v:g}' for k, v in bad.items())})" if bad else ""),
                     {"unknowns": bad})


def grid_complete(frame: pd.DataFrame, points: Sequence[GridPoint]) -> Criterion:
    """Write-up criterion 1 as lmlab can see it: every grid run has metrics."""
    have = {_key(c, g) for c, g in zip(frame["config"], frame["gamma"])}
    missing = [f"{p.config}@gamma={p.gamma:g}" for p in points if _key(p.config, p.gamma) not in have]
    n = len(points)
    return Criterion("grid_complete", f"All {n} training jobs complete without errors", not missing and n > 0,
                     float(n - len(missing)), f"{n - len(missing)} of {n} grid runs have metrics"
                     + (f"; missing: {', '.join(missing)}" if missing else ""), {"missing": missing})


def evaluate_criteria(frame: pd.DataFrame, *, band: tuple[float, float] = (0.3, 0.7), min_accuracy: float = 0.6,
                      most_share: float = 0.5, points: Sequence[GridPoint] | None = None) -> list[Criterion]:
    """Every criterion on ``frame`` (one row per run); with ``points``, also whether the grid is complete."""
    _check_frame(frame)
    if frame.empty:
        raise ValueError("criteria need at least one run")
    out = [grid_complete(frame, points)] if points is not None else []
    return [*out, valid_predictions(frame), monotone_gamma_effect(frame), *acceptance_span(frame, band),
            accuracy_for_most(frame, min_accuracy, most_share)]


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else "PASS" if passed else "FAIL"


def criteria_markdown(criteria: Iterable[Criterion]) -> str:
    """A pass/fail table with the evidence, then the monotonicity detail per group."""
    criteria = list(criteria)
    lines = ["| criterion (write-up) | verdict | evidence |", "|---|---|---|"]
    lines += [f"| {c.writeup} | {_verdict(c.passed)} | {c.summary} |" for c in criteria]
    mono = next((c for c in criteria if c.name == "monotone_gamma_effect"), None)
    if mono is not None and mono.evidence.get("groups"):
        lines += ["", "| odds / variant | gammas | acceptance | expected | monotone |", "|---|---|---|---|---|"]
        for name, g in mono.evidence["groups"].items():
            lines.append(f"| {name} | {', '.join(f'{x:g}' for x in g['gammas'])} | "
                         f"{', '.join(f'{x:.3f}' for x in g['acceptance'])} | {g['expected']} | "
                         f"{'yes' if g['monotone'] else 'no'} |")
    return "\n".join(lines) + "\n"
