"""Seed replicates: how far each headline moves across seeds, and which conclusions survive.

A single embedded run gives one number per headline, and its bootstrap interval covers only the
test items, not the training seed. Running the pipeline for several seeds (``dvc exp run --queue
-S seed=0,1,2``, one DVC experiment each) and aggregating here answers the reviewer's question
"would another seed have told the same story?": per headline the mean, standard deviation, range
and a t-interval across seeds; per conclusion, whether every seed agrees on its sign.

The input is one ``{family: metrics dict}`` per run (the content of ``reports/metrics/<family>.json``),
read from ``dvc exp show --json`` by :func:`runs_from_exp_show` or from files by the caller.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from lmlab.errors import InputError

__all__ = [
    "SeedRun",
    "Conclusion",
    "CONCLUSIONS",
    "exp_show_json",
    "runs_from_exp_show",
    "headline_spread",
    "conclusion_agreement",
    "render_seed_report",
]

METRICS_FILES = {
    "ilm": "reports/metrics/ilm.json",
    "ensemble": "reports/metrics/ensemble.json",
    "weighted": "reports/metrics/weighted.json",
    "monotonic": "reports/metrics/monotonic.json",
}
LEVELS = ("A1", "A2", "B1", "B2", "C1")
FRACTIONS = ("odds_1_2", "odds_1_3", "odds_1_4", "odds_1_8")  # the weighted family's training sets (accept:reject odds)


@dataclass(frozen=True)
class SeedRun:
    """One run of the pipeline: its name (experiment or revision), seed and family metrics."""

    name: str
    seed: int | None
    metrics: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Conclusion:
    """A claim a write-up makes, as a signed quantity: positive means the claim holds in that run."""

    family: str
    claim: str
    value: Callable[[Mapping[str, Any]], float | None]


def _get(data: Mapping[str, Any], dotted: str) -> float | None:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def _difference(a: str, b: str) -> Callable[[Mapping[str, Any]], float | None]:
    def value(data: Mapping[str, Any]) -> float | None:
        left, right = _get(data, a), _get(data, b)
        return None if left is None or right is None else left - right
    return value


def _key(dotted: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda data: _get(data, dotted)


CONCLUSIONS: tuple[Conclusion, ...] = (
    *(Conclusion("ilm", f"specialization helps at {level} (gain > 0)", _key(f"specialization_gain.{level}"))
      for level in LEVELS),
    Conclusion("ensemble", "the causal model beats the seq2seq model (accuracy difference > 0)",
               _difference("accuracy.causal", "accuracy.seq2seq")),
    Conclusion("ensemble", "agreeing models are more accurate than either alone (agreed - best single > 0)",
               lambda d: None if _get(d, "agreed_accuracy") is None else
               _get(d, "agreed_accuracy") - max(_get(d, "accuracy.causal") or 0.0, _get(d, "accuracy.seq2seq") or 0.0)),
    Conclusion("weighted", "up-weighting Accept raises acceptance over the unweighted baseline (gamma > 1)",
               _difference("odds_1_2-accept.acceptance_rate", "odds_1_2-baseline.acceptance_rate")),
    *(Conclusion("weighted", f"at {fraction} the Accept-weighted model accepts more than the Reject-weighted one",
                 _difference(f"{fraction}-accept.acceptance_rate", f"{fraction}-reject.acceptance_rate"))
      for fraction in FRACTIONS),
    Conclusion("monotonic", "the monotone model is more robust (attack reduction > 0)", _key("attack_reduction_pct")),
    Conclusion("monotonic", "monotonicity costs perplexity (gap > 0)", _key("ppl_gap_pct")),
)


def exp_show_json(rev: str | None = None) -> Any:
    """``dvc exp show --json`` of the repository in the working directory (workspace, commits, experiments).

    ``rev``: the commit the experiments were run from (DVC shows HEAD's experiments by default, so
    experiments queued before a later commit need their base commit named).
    """
    command = ["dvc", "exp", "show", "--json", *(["--rev", rev] if rev else [])]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"`dvc exp show --json` failed: {proc.stderr.strip()[:300]}",
                         hint="run inside the repository with the venv's dvc on PATH, or pass --exp-json.")
    return json.loads(proc.stdout)


def runs_from_exp_show(data: Any, metrics_files: Mapping[str, str] = METRICS_FILES) -> list[SeedRun]:
    """Every workspace, commit and experiment of ``dvc exp show --json`` that has metrics.

    Runs are named after the experiment (or the revision); the seed is the top-level ``seed``
    param of ``params.yaml`` in that run.
    """
    runs: list[SeedRun] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        payload = node.get("data")
        if isinstance(payload, dict) and isinstance(payload.get("metrics"), dict):
            metrics = {family: payload["metrics"].get(path, {}).get("data") for family, path in metrics_files.items()}
            metrics = {family: found for family, found in metrics.items() if isinstance(found, Mapping)}
            params = ((payload.get("params") or {}).get("params.yaml") or {}).get("data") or {}
            if metrics:
                seed = params.get("seed")
                name = str(node.get("name") or payload.get("name") or node.get("rev") or payload.get("rev") or "")
                runs.append(SeedRun(name, int(seed) if isinstance(seed, int) else None, metrics))
        for key in ("experiments", "revs"):
            if node.get(key):
                walk(node[key])

    walk(data)
    return runs


def headline_spread(runs: Sequence[SeedRun], keys: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Per ``family -> [dotted key]``: mean, std, min, max and a 95% t-interval of the mean across runs.

    The t-interval (``scipy.stats.t``) is the spread a new seed's *mean* would be expected in; it
    is ``nan`` with fewer than two runs. Keys absent from a run are left out of its statistics.
    """
    rows = []
    for family, family_keys in keys.items():
        for key in family_keys:
            values = [v for run in runs if (v := _get(run.metrics.get(family, {}), key)) is not None]
            n = len(values)
            mean = statistics.fmean(values) if values else math.nan
            std = statistics.stdev(values) if n > 1 else math.nan
            half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
            rows.append({"family": family, "key": key, "n": n, "mean": mean, "std": std,
                         "min": min(values) if values else math.nan, "max": max(values) if values else math.nan,
                         "ci_low": mean - half, "ci_high": mean + half, "values": values})
    return rows


def conclusion_agreement(runs: Sequence[SeedRun],
                         conclusions: Iterable[Conclusion] = CONCLUSIONS) -> list[dict[str, Any]]:
    """Per conclusion: its signed value in every run and whether all runs agree it holds (or fails)."""
    rows = []
    for conclusion in conclusions:
        values = [conclusion.value(run.metrics.get(conclusion.family, {})) for run in runs]
        known = [v for v in values if v is not None]
        holds = sum(v > 0 for v in known)
        if not known:
            verdict = "not measured"
        elif holds == len(known):
            verdict = "holds in every run"
        elif holds == 0:
            verdict = "fails in every run"
        else:
            verdict = f"mixed: holds in {holds} of {len(known)}"
        rows.append({"family": conclusion.family, "claim": conclusion.claim, "values": values,
                     "holds": holds, "n": len(known), "verdict": verdict,
                     "robust": bool(known) and holds in (0, len(known))})
    return rows


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def render_seed_report(runs: Sequence[SeedRun], spread: Sequence[Mapping[str, Any]],
                       agreement: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the runs, one spread table per family, and the conclusions table."""
    lines = ["# Seed replicates", "",
             "Generated by `scripts/seed_table.py` from DVC experiments (do not edit by hand).", "",
             "Runs: " + ", ".join(f"`{run.name}` (seed {run.seed})" for run in runs) + ".", ""]
    for family in dict.fromkeys(row["family"] for row in spread):
        lines += [f"## {family}", "", "| key | mean | std | min | max | 95% t-interval of the mean | per run |",
                  "|---|---|---|---|---|---|---|"]
        for row in (r for r in spread if r["family"] == family):
            lines.append(f"| `{row['key']}` | {_fmt(row['mean'])} | {_fmt(row['std'])} | {_fmt(row['min'])} | "
                         f"{_fmt(row['max'])} | [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}] | "
                         + ", ".join(_fmt(v) for v in row["values"]) + " |")
        lines.append("")
    lines += ["## Conclusions across seeds", "",
              "Each claim as a signed quantity (positive = the claim holds in that run).", "",
              "| family | claim | per run | verdict |", "|---|---|---|---|"]
    for row in agreement:
        lines.append(f"| {row['family']} | {row['claim']} | " + ", ".join(_fmt(v) for v in row["values"])
                     + f" | {row['verdict']} |")
    return "\n".join(lines) + "\n"
