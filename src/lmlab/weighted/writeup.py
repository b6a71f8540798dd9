"""Write-up 003's numbers (weighted-loss Accept/Reject decisions) beside lmlab's, as comparison rows.

The write-up (``003_*.txt``, "Implementation Summary - Weighted Loss Function Experiments") is a
plan with its data stage tested: it reports the verified proportions of its four training sets,
the size and balance of its test set, the 19-run grid and five measurable "Success Criteria", but
no trained model (training, inference and evaluation are "pending - requires GPU allocation").
So its criteria are targets and lmlab's rows are the first measurement of them; at the embedded
default they belong to tiny GPT-2 models on the synthetic review sample, not Qwen2.5-7B-Instruct
on the lab's ICLR reviews. ``wl_eval`` sees one experiment (one ``gamma``): its criteria rows are
computed on that experiment's grid runs, and the note says so; the whole grid is judged by
``scripts/lab sweep`` (``reports/weighted/sweep_criteria.md``) with the same functions
(:mod:`lmlab.weighted.criteria`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lmlab.weighted.criteria import Criterion, GridPoint, evaluate_criteria, select_grid
from lmlab.writeup import NOT_AT_EMBEDDED, WriteupRow

__all__ = ["WRITEUP", "SETS", "TEST_SET_SIZE", "TEST_SET_ACCEPT_PCT", "GRID_RUNS", "writeup_rows", "run_criteria"]

WRITEUP = "003_32305fbb5ec379e1.txt"
METRICS = "weighted.json"
SETS_SUMMARY = "data/weighted/sets/summary.json"

# "## Testing Performed" / "### Unit Tests":
#   - ✓ Proportions verified: 1:2 → 33%, 1:3 → 25%, 1:4 → 20%, 1:8 → 11%
# i.e. accept:reject odds (accept share a / (a + r), rounded to whole percent).
SETS: dict[str, tuple[tuple[int, int], int]] = {
    "1:2": ((1, 2), 33), "1:3": ((1, 3), 25), "1:4": ((1, 4), 20), "1:8": ((1, 8), 11)}
# "## Contact & References": "Test dataset: 2,024 samples (50:50 balanced)".
TEST_SET_SIZE = 2024
TEST_SET_ACCEPT_PCT = 50
# "2. **stage2_train_models.sbatch**": "SLURM job array for 19 training experiments".
GRID_RUNS = 19
# "## Model" / "Contact & References": "Base model: Qwen/Qwen2.5-7B-Instruct"; "## Resource
# Requirements": "~$7,448 (3,724 GPU-hours)".
BASE_MODEL = "Qwen/Qwen2.5-7B-Instruct"

_SCALE = "embedded: tiny GPT-2 on the synthetic review sample, not Qwen2.5-7B-Instruct on ICLR reviews"
_TARGET = "a target: the write-up reports no trained model"


def _set_row(label: str, odds: tuple[int, int], pct: int, sets_summary: Mapping[str, Mapping[str, Any]]) -> WriteupRow:
    quantity = f"training set {label} (accept:reject): accepted share, %"
    name = next((n for n, s in sets_summary.items() if tuple(s.get("odds", ())) == odds), None)
    if name is None:
        return WriteupRow(quantity, f"{pct} %", f"no set with odds {label} in weighted.sets.odds",
                          source=SETS_SUMMARY)
    entry = sets_summary[name]
    share = 100.0 * entry["n_accept"] / entry["n"]
    return WriteupRow(quantity, f"{pct} %", share, source=f"{SETS_SUMMARY}:{name}",
                      note=f"{entry['n_accept']} of {entry['n']} rows accepted; verified like the write-up, "
                           "to the whole percent", passed=round(share) == pct)


def _criterion_row(criterion: Criterion, quantity: str, writeup: str, value: float | None, scope: str) -> WriteupRow:
    return WriteupRow(quantity, writeup, value if value is not None else criterion.summary,
                      source=f"{METRICS} ({scope})", note=f"{criterion.summary}; {_TARGET}", passed=criterion.passed)


def writeup_rows(metrics: Mapping[str, Any], sets_summary: Mapping[str, Mapping[str, Any]],
                 criteria: Sequence[Criterion], *, n_grid: int, n_test: int, scope: str) -> list[WriteupRow]:
    """The comparison rows of ``wl_eval``.

    ``metrics`` is ``reports/metrics/weighted.json``'s content, ``sets_summary`` ``wl_data``'s
    ``summary.json`` (per set its ``odds``, ``n``, ``n_accept``), ``criteria`` those of
    :func:`lmlab.weighted.criteria.evaluate_criteria` on this run, ``n_grid`` the number of runs in the
    grid as params define it, ``n_test`` the test rows and ``scope`` which runs the criteria saw.
    """
    rows = [_set_row(label, odds, pct, sets_summary) for label, (odds, pct) in SETS.items()]
    gold = metrics.get("gold_acceptance_rate")
    rows += [
        WriteupRow("test set: rows", f"{TEST_SET_SIZE:,}", float(n_test), source=METRICS,
                   note="the embedded sample's fixed test set; the lab's ICLR reviews are not in the repository"),
        WriteupRow("test set: accepted share, %", f"{TEST_SET_ACCEPT_PCT} % (balanced)",
                   100.0 * float(gold) if isinstance(gold, (int, float)) else None,
                   source=f"{METRICS}:gold_acceptance_rate"),
        WriteupRow("training runs in the grid", str(GRID_RUNS), float(n_grid), source="params.yaml:weighted.grid",
                   note="baseline + each set x {accept, reject} x its gammas; scripts/lab sweep runs them all"),
        WriteupRow(f"decisions of {BASE_MODEL} (acceptance, accuracy)", "not reported (runs pending)",
                   NOT_AT_EMBEDDED, note=f"full fine-tuning of a 7B model needs GPUs; {_SCALE}"),
    ]
    by_name = {c.name: c for c in criteria}
    if "valid_predictions" in by_name:
        c = by_name["valid_predictions"]
        rows.append(_criterion_row(c, "criterion 2: unparseable generated decisions", "0 (all predictions valid)",
                                   c.value, scope))
    if "monotone_gamma_effect" in by_name:
        c = by_name["monotone_gamma_effect"]
        rows.append(_criterion_row(c, "criterion 3: (set, variant) groups monotone in gamma, %",
                                   "monotonic gamma effects", None if c.value is None else 100.0 * c.value, scope))
    for name, quantity, words in (("acceptance_span_low", "criterion 4: lowest predicted acceptance, %", "<= 30 %"),
                                  ("acceptance_span_high", "criterion 4: highest predicted acceptance, %", ">= 70 %")):
        if name in by_name:
            c = by_name[name]
            rows.append(_criterion_row(c, quantity, f"{words} (rates span 30-70 %)",
                                       None if c.value is None else 100.0 * c.value, scope))
    if "accuracy_for_most" in by_name:
        c = by_name["accuracy_for_most"]
        rows.append(_criterion_row(c, "criterion 5: runs with accuracy > 60 %, %", "most configurations",
                                   None if c.value is None else 100.0 * c.value, scope))
    return rows


def run_criteria(metrics: Mapping[str, Any], points: Sequence[GridPoint], *, band: tuple[float, float],
                 min_accuracy: float, most_share: float, gamma: float | None = None) -> tuple[list[Criterion], str]:
    """The criteria on one ``wl_eval`` run's grid points (its configs at its ``gamma``), and their scope.

    Grid completeness is left to the sweep: one experiment holds only the runs at one gamma. ``gamma`` is
    the swept param (metrics files before issue 17 also carried it as a top-level key).
    """
    from lmlab.weighted.report import rows_from_metrics, sweep_frame

    frame = sweep_frame(rows_from_metrics(metrics, "workspace"))
    inside, outside = select_grid(frame, points)
    gamma = metrics.get("gamma") if gamma is None else gamma
    scope = (f"{len(inside)} of the {len(points)} grid runs, those at gamma = {gamma:g} and the baseline; "
             "the whole grid: scripts/lab sweep")
    if len(outside):
        scope += f"; outside the grid, not counted: {', '.join(outside['config'])}"
    if inside.empty:
        return [], scope
    return evaluate_criteria(inside, band=band, min_accuracy=min_accuracy, most_share=most_share), scope
