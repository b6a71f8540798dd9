"""Write-up 004's numbers (monotone Pythia-1.4B under UAT/HotFlip) beside lmlab's, as comparison rows.

The write-up (``004_*.txt``, "Foundation LLM Experiments - Development Complete") reports no
measured Pythia result: its "Expected Results" are expectations "Based on T5-small pattern and
test simulations", its "Pipeline Simulation" block two figures of a local tiny-model run, and its
"Success Criteria" two tiers. Every row says which of these it quotes. lmlab's values come from the
family's final metrics (``reports/metrics/monotonic.json``); at the embedded default they belong to
a tiny GPT-NeoX on synthetic text, so absolute perplexities are not comparable to Pythia on the
Pile (the ratios, the gap, success rates and the criteria are the same quantities). A reduction
that is not meaningful (the monotone model fails the perplexity criterion,
:mod:`lmlab.monotonic.criteria`) is shown as a reason, never as a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lmlab.monotonic.criteria import (
    MEANINGFUL_MAX_GAP_PCT,
    TIERS,
    assess,
    finite,
    gap_criterion,
    perplexity_ok,
    reduction_criterion,
)
from lmlab.writeup import NOT_AT_EMBEDDED, WriteupRow

__all__ = ["WRITEUP", "EXPECTED", "SIMULATION", "writeup_rows"]

WRITEUP = "004_8023b8dad7ae787c.txt"
METRICS = "monotonic.json"

# "## Expected Results" / "### Training Dynamics" and "### Attack Robustness" ("Based on T5-small
# pattern and test simulations"; Pythia-1.4B, recovery "1 epoch on Pile"):
#   - Initial perplexity (monotonic): ~18-20 (degraded from constraints)
#   - Final perplexity (baseline): ~10.0-10.5
#   - Final perplexity (monotonic): ~10.7-11.2
#   - **Gap**: ~6-8% (acceptable, consistent with T5)
#   - HotFlip baseline success: ~55-60%
#   - HotFlip monotonic success: ~17-20%
#   - **Reduction**: ~65-70% (significant, validates claims)
#   - UAT impact: <1% across all models (weak, consistent with T5)
EXPECTED = {
    "ppl_monotonic_before_recovery": "~18-20",
    "ppl_baseline": "~10.0-10.5",
    "ppl_monotonic": "~10.7-11.2",
    "ppl_gap_pct": "~6-8 %",
    "hotflip_baseline_pct": "~55-60 %",
    "hotflip_monotonic_pct": "~17-20 %",
    "attack_reduction_pct": "~65-70 %",
    "uat_impact_pct": "< 1 %",
}
# Derived from two of the above (not stated in the write-up): ~18-20 / ~10.0-10.5.
EXPECTED_CONSTRAINT_RATIO = "~1.7-2.0x"
# "### Pipeline Simulation: ✅ PASS" (python test_pipeline_local.py, "Full pipeline with tiny models"):
#   Perplexity Gap: +7.2%
#   Attack Reduction: 69.0%
SIMULATION = {"ppl_gap_pct": "+7.2 %", "attack_reduction_pct": "69.0 %"}
# "## Model: Pythia-1.4B": "~560M FFN parameters (40% of total)".
FFN_PARAMETERS = "~560M (40 %)"

_SCALE = "absolute perplexities compare only at the write-up's scale (Pythia-1.4B on the Pile)"
_EXPECTED = "write-up's expectation, not a measured result"


def _get(metrics: Mapping[str, Any], *keys: str) -> Any:
    node: Any = metrics
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _pct(value: Any) -> float | None:
    """A rate in [0, 1] as a percentage."""
    v = finite(value)
    return None if v is None else 100.0 * v


def _ratio(a: Any, b: Any) -> float | None:
    x, y = finite(a), finite(b)
    return None if x is None or y is None or y == 0 else x / y


def _not_meaningful(gap: Any) -> str:
    g = finite(gap)
    shown = "undefined" if g is None else f"{g:.1f} %"
    return f"not meaningful (perplexity gap {shown} fails < {MEANINGFUL_MAX_GAP_PCT:g} %)"


def writeup_rows(metrics: Mapping[str, Any]) -> list[WriteupRow]:
    """The comparison rows from the family's final metrics (``mono_attack``'s ``monotonic.json``)."""
    gap = metrics.get("ppl_gap_pct")
    ok = perplexity_ok(gap)
    reduction = metrics.get("attack_reduction_pct") if ok else None
    reduction_value: float | str | None = finite(reduction) if ok else _not_meaningful(gap)
    if ok and reduction_value is None:
        reduction_value = "undefined (the baseline's HotFlip never succeeded)"
    criteria = assess(gap, reduction)["criteria"]
    mono_note = "" if ok else "the monotone model fails the perplexity criterion: its robustness is not a gain"
    rows = [
        WriteupRow("perplexity of the monotone model right after the constraint, before recovery", EXPECTED[
            "ppl_monotonic_before_recovery"], finite(_get(metrics, "ppl", "monotonic_before_recovery")),
            source=f"{METRICS}:ppl.monotonic_before_recovery", note=f"{_EXPECTED}; {_SCALE}"),
        WriteupRow("perplexity ratio the constraint costs before recovery (constrained / unconstrained base)",
                   EXPECTED_CONSTRAINT_RATIO,
                   _ratio(_get(metrics, "ppl", "monotonic_before_recovery"), _get(metrics, "ppl", "pretrained")),
                   source=f"{METRICS}:ppl.monotonic_before_recovery / ppl.pretrained",
                   note="derived from the write-up's ~18-20 (monotone, initial) / ~10.0-10.5 (baseline, final); "
                        "lmlab divides by the pretrained base (the write-up gives none; for a converged Pythia "
                        "it is close to the final baseline, for the embedded tiny base it is not)"),
        WriteupRow("perplexity of the baseline after recovery", EXPECTED["ppl_baseline"],
                   finite(_get(metrics, "ppl", "baseline")), source=f"{METRICS}:ppl.baseline",
                   note=f"{_EXPECTED}; {_SCALE}"),
        WriteupRow("perplexity of the monotone model after recovery", EXPECTED["ppl_monotonic"],
                   finite(_get(metrics, "ppl", "monotonic")), source=f"{METRICS}:ppl.monotonic",
                   note=f"{_EXPECTED}; {_SCALE}"),
        WriteupRow("perplexity gap (%)", EXPECTED["ppl_gap_pct"], finite(gap), source=f"{METRICS}:ppl_gap_pct",
                   note=_EXPECTED),
        WriteupRow("HotFlip success rate, baseline (%)", EXPECTED["hotflip_baseline_pct"],
                   _pct(_get(metrics, "hotflip", "baseline", "success_rate")),
                   source=f"{METRICS}:hotflip.baseline.success_rate",
                   note=f"{_EXPECTED}; success = perplexity +15 %"),
        WriteupRow("HotFlip success rate, monotone (%)", EXPECTED["hotflip_monotonic_pct"],
                   _pct(_get(metrics, "hotflip", "monotonic", "success_rate")),
                   source=f"{METRICS}:hotflip.monotonic.success_rate",
                   note="; ".join(n for n in (_EXPECTED, mono_note) if n)),
        WriteupRow("HotFlip attack reduction (%, relative)", EXPECTED["attack_reduction_pct"], reduction_value,
                   source=f"{METRICS}:attack_reduction_pct", note=_EXPECTED),
    ]
    for model in ("baseline", "monotonic"):
        rows.append(WriteupRow(f"UAT perplexity increase, {model} (%)", EXPECTED["uat_impact_pct"],
                               finite(_get(metrics, "uat", model, "ppl_increase_pct")),
                               source=f"{METRICS}:uat.{model}.ppl_increase_pct",
                               note=f"{_EXPECTED} ('UAT impact: <1% across all models'); lmlab's UAT is "
                                    "gradient-guided, the upstream's a random search"))
    rows += [
        WriteupRow("local tiny-model simulation: perplexity gap (%)", SIMULATION["ppl_gap_pct"], finite(gap),
                   source=f"{METRICS}:ppl_gap_pct",
                   note="write-up's 'Pipeline Simulation' (test_pipeline_local.py); its model and data are not stated"),
        WriteupRow("local tiny-model simulation: attack reduction (%)", SIMULATION["attack_reduction_pct"],
                   reduction_value, source=f"{METRICS}:attack_reduction_pct",
                   note="write-up's 'Pipeline Simulation' (test_pipeline_local.py); its model and data are not stated"),
        WriteupRow("constrained FFN parameters of Pythia-1.4B", FFN_PARAMETERS, NOT_AT_EMBEDDED,
                   note="needs Pythia-1.4B; lmlab counts them (the model's monotonic.json, constrained_parameters): "
                        "both projections are 2 x 2048 x 8192 x 24 = 805M weights (57 %), not 560M"),
    ]
    g, r = finite(gap), finite(reduction)
    both = (f"gap {'undefined' if g is None else f'{g:.1f} %'}, reduction "
            f"{('undefined' if r is None else f'{r:.1f} %') if ok else 'not meaningful'}")
    for tier in TIERS:
        label = "minimal ('Good Enough')" if tier.name == "minimal" else "strong ('Publication Quality')"
        rows += [
            WriteupRow(f"success criterion, {label}: perplexity gap < {tier.max_ppl_gap_pct:g} %",
                       f"< {tier.max_ppl_gap_pct:g} %", finite(gap), source=f"{METRICS}:ppl_gap_pct",
                       passed=criteria[gap_criterion(tier)]),
            WriteupRow(f"success criterion, {label}: attack reduction > {tier.min_attack_reduction_pct:g} %",
                       f"> {tier.min_attack_reduction_pct:g} %", reduction_value,
                       source=f"{METRICS}:attack_reduction_pct",
                       passed=criteria[reduction_criterion(tier)],
                       note="" if ok else "fails: robustness of a model failing the perplexity criterion is not a gain"),
            WriteupRow(f"success, {label}: both criteria", "both hold", both,
                       source=f"{METRICS}:criteria.{tier.name}", passed=criteria[tier.name]),
        ]
    rows.append(WriteupRow("success criterion, strong: consistent across seeds", "consistent across seeds",
                           "one run; see reports/seeds.md (scripts/lab seeds)",
                           note="not assessed by a single run"))
    return rows
