"""The write-up's success criteria, and when an attack reduction may be read as robustness at all.

Write-up 004 ("Success Criteria") states two tiers:

* minimal ("Good Enough"): perplexity gap < 15 % and attack reduction > 40 %;
* strong ("Publication Quality"): perplexity gap < 10 % and attack reduction > 60 % (plus
  "consistent across seeds", which one run cannot show: ``scripts/seed_table.py`` does).

Both are judged on the point estimates, as the write-up states them (the CIs stay beside them in
the metrics). A monotone model that no longer models language is trivially "robust": an attack
cannot raise a loss that is already near uniform. Tried on a real 135M model with a short
recovery, the monotone arm came out at perplexity ~105,000 (baseline 143) and the aggregate said
``attack_reduction_pct: 100``. So the reduction is a robustness result only when the monotone model
passes the perplexity criterion (gap < 15 %, the minimal tier); otherwise it is withheld (null) with
``attack_reduction_meaningful: false`` and every attack criterion fails. Pure functions on the
metrics dict, so the rule is tested on constructed numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Tier", "TIERS", "MEANINGFUL_MAX_GAP_PCT", "WITHHELD_KEYS", "finite", "perplexity_ok",
           "gap_criterion", "reduction_criterion", "assess", "qualify_robustness",
           "verdict"]


@dataclass(frozen=True)
class Tier:
    """One tier of the write-up's success criteria (strict inequalities, as written)."""

    name: str
    max_ppl_gap_pct: float
    min_attack_reduction_pct: float


TIERS = (Tier("minimal", 15.0, 40.0), Tier("strong", 10.0, 60.0))
# Robustness of a model failing the (minimal) perplexity criterion is not a result.
MEANINGFUL_MAX_GAP_PCT = TIERS[0].max_ppl_gap_pct
# Derived "gain" keys of the aggregate, withheld (null) when the reduction is not meaningful; the
# per-model success rates (hotflip.<model>.success_rate ...) stay: they are measurements.
WITHHELD_KEYS = ("attack_reduction_pct", "attack_reduction_pct_ci_low", "attack_reduction_pct_ci_high",
                 "attack_reduction_pct_rel_nll", "attack_change_pp", "attack_change_pp_rel_nll")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def perplexity_ok(ppl_gap_pct: Any) -> bool:
    """Whether the monotone model passes the perplexity criterion that makes its robustness readable."""
    gap = finite(ppl_gap_pct)
    return gap is not None and gap < MEANINGFUL_MAX_GAP_PCT


def gap_criterion(tier: Tier) -> str:
    """The criteria key of a tier's perplexity criterion (``ppl_gap_lt_15``)."""
    return f"ppl_gap_lt_{tier.max_ppl_gap_pct:g}"


def reduction_criterion(tier: Tier) -> str:
    """The criteria key of a tier's attack criterion (``attack_reduction_gt_40``)."""
    return f"attack_reduction_gt_{tier.min_attack_reduction_pct:g}"


def assess(ppl_gap_pct: Any, attack_reduction_pct: Any) -> dict[str, Any]:
    """Pass/fail of every criterion and tier, and whether the reduction is meaningful.

    Returns ``{"attack_reduction_meaningful": bool, "criteria": {"ppl_gap_lt_15": bool, ...,
    "minimal": bool, "strong": bool}}``. A missing or non-finite gap fails (a model with infinite
    perplexity passes nothing); an undefined reduction (the baseline never succeeded) fails the
    attack criteria and is not meaningful; a meaningless reduction fails them whatever its value.
    """
    gap, reduction = finite(ppl_gap_pct), finite(attack_reduction_pct)
    meaningful = perplexity_ok(gap) and reduction is not None
    criteria: dict[str, bool] = {}
    for tier in TIERS:
        criteria[gap_criterion(tier)] = gap is not None and gap < tier.max_ppl_gap_pct
        criteria[reduction_criterion(tier)] = meaningful and reduction > tier.min_attack_reduction_pct  # type: ignore[operator]
    for tier in TIERS:
        criteria[tier.name] = criteria[gap_criterion(tier)] and criteria[reduction_criterion(tier)]
    return {"attack_reduction_meaningful": meaningful, "criteria": criteria}


def qualify_robustness(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The aggregate with the criteria added and, unless meaningful, the reduction keys withheld (null).

    Only the ``ppl_gap_pct`` and ``attack_reduction_pct`` keys are read; the input is not changed.
    """
    out = dict(metrics)
    out.update(assess(metrics.get("ppl_gap_pct"), metrics.get("attack_reduction_pct")))
    if not perplexity_ok(metrics.get("ppl_gap_pct")):
        for key in WITHHELD_KEYS:
            if key in out:
                out[key] = None
    return out


def verdict(metrics: Mapping[str, Any]) -> str:
    """One line for the plot and the reports: the reduction, or why there is none."""
    gap = finite(metrics.get("ppl_gap_pct"))
    gap_text = "undefined" if gap is None else f"{gap:+.1f} %"
    if not perplexity_ok(gap):
        return (f"robustness NOT MEANINGFUL: perplexity gap {gap_text} fails the < {MEANINGFUL_MAX_GAP_PCT:g} % "
                "criterion (a model that predicts little cannot be attacked); attack reduction withheld")
    reduction = finite(metrics.get("attack_reduction_pct"))
    if reduction is None:
        return f"perplexity gap {gap_text}; attack reduction undefined (the baseline's attack never succeeded)"
    criteria = assess(gap, reduction)["criteria"]
    tiers = [t.name for t in TIERS if criteria[t.name]]
    passed = f"write-up criteria passed: {', '.join(tiers)}" if tiers else "write-up criteria: none passed"
    return f"perplexity gap {gap_text}; HotFlip attack reduction {reduction:+.1f} % ({passed})"
