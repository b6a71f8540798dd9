"""The cross-family summary: one Markdown page and one JSON file built from the metrics files.

Every number in the summary names the metrics file and key it comes from, so a reader can
trace it (and ``dvc metrics diff`` shows the same keys).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["FamilyMetrics", "flatten", "build_summary", "render_markdown"]

LEVELS = ("A1", "A2", "B1", "B2", "C1", "all")


@dataclass(frozen=True)
class FamilyMetrics:
    """One family's metrics file: its path (as shown to readers) and parsed content."""

    family: str
    path: str
    data: Mapping[str, Any]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys, as ``dvc metrics show`` prints them."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted))
        else:
            out[dotted] = value
    return out


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ilm(m: FamilyMetrics, headline: dict[str, Any]) -> list[str]:
    flat = flatten(m.data)
    ppl = m.data.get("ppl", {})
    models = [k for k in ppl if k in LEVELS] + sorted(k for k in ppl if k not in LEVELS)
    lines = [f"Perplexity of every model on every level's test set (infill text only; source `{m.path}`, "
             "keys `ppl.<model>.<test_level>`; lower is better, the diagonal is the specialized model on its own level):", ""]
    rows = [[f"**{model}**"] + [_num(ppl[model].get(level), 2) for level in LEVELS] for model in models]
    lines += _table(["model \\ test level", *LEVELS], rows)
    gains = m.data.get("specialization_gain", {})
    if gains:
        lines += ["", f"Specialization gain = (general ppl - specialized ppl) / general ppl (source `{m.path}`, "
                  "keys `specialization_gain.<level>` and its paired-bootstrap 95% CI):", ""]
        rows = []
        for level, gain in gains.items():
            low = flat.get(f"specialization_gain_ci.{level}.low")
            high = flat.get(f"specialization_gain_ci.{level}.high")
            ci = f"[{_num(low)}, {_num(high)}]" if low is not None else "n/a"
            verdict = "n/a"
            if low is not None and high is not None:
                verdict = "helps" if low > 0 else "hurts" if high < 0 else "no significant difference"
            rows.append([level, _num(gain), ci, verdict])
            headline[f"ilm.specialization_gain.{level}"] = gain
        lines += _table(["level", "gain", "95% CI", "specialization"], rows)
    return lines


def _ensemble(m: FamilyMetrics, headline: dict[str, Any]) -> list[str]:
    flat = flatten(m.data)
    models = sorted({k.split(".", 1)[1] for k in flat if k.startswith("format_accuracy.")})
    metric_names = ["accuracy", "format_accuracy", "rouge1", "rougeL"]
    rows = [[f"**{model}**"] + [_num(flat.get(f"{name}.{model}")) for name in metric_names] for model in models]
    lines = [f"Source `{m.path}`: agreement rate **{_num(flat.get('agreement_rate'))}** over n = {_num(flat.get('n'))} "
             "held-out examples (keys `agreement_rate`, `n`); per model (keys `<metric>.<model>`):", ""]
    lines += _table(["model", *metric_names], rows)
    extras = [k for k in ("majority_accuracy", "cohen_kappa", "fleiss_kappa", "copy_baseline_accuracy") if k in flat]
    if extras:
        lines += ["", "; ".join(f"`{k}` = {_num(flat[k])}" for k in extras)]
    headline["ensemble.agreement_rate"] = flat.get("agreement_rate")
    for model in models:
        if f"accuracy.{model}" in flat:
            headline[f"ensemble.accuracy.{model}"] = flat[f"accuracy.{model}"]
    return lines


def _weighted(m: FamilyMetrics, headline: dict[str, Any]) -> list[str]:
    names = ["accuracy", "precision", "recall", "f1", "acceptance_rate"]
    configs = [k for k, v in m.data.items() if isinstance(v, Mapping) and "acceptance_rate" in v]
    gamma = m.data.get("gamma")
    lines = [f"Decision metrics at gamma = **{_num(gamma, 2)}** on the fixed balanced test set "
             f"(source `{m.path}`, keys `<config>.<metric>`; Accept is the positive class):", ""]
    rows = [[f"**{c}**"] + [_num(m.data[c].get(n)) for n in names] for c in configs]
    lines += _table(["config", *names], rows)
    headline["weighted.gamma"] = gamma
    for c in configs:
        headline[f"weighted.acceptance_rate.{c}"] = m.data[c].get("acceptance_rate")
    return lines


def _monotonic(m: FamilyMetrics, headline: dict[str, Any]) -> list[str]:
    flat = flatten(m.data)
    arms = ("baseline", "monotonic")
    rows = [[f"**{arm}**", _num(flat.get(f"ppl.{arm}"), 2), _num(flat.get(f"uat.{arm}.ppl_increase_pct"), 1),
             _num(flat.get(f"hotflip.{arm}.success_rate"))] for arm in arms]
    lines = [f"Source `{m.path}` (keys `ppl.<arm>`, `uat.<arm>.ppl_increase_pct`, `hotflip.<arm>.success_rate`):", ""]
    lines += _table(["model", "perplexity", "UAT ppl increase %", "HotFlip success rate"], rows)
    lines += ["", f"Perplexity gap **{_num(flat.get('ppl_gap_pct'), 1)} %** (`ppl_gap_pct`); attack success reduction "
              f"**{_num(flat.get('attack_reduction_pct'), 1)} %** (`attack_reduction_pct`, relative, HotFlip)."]
    headline["monotonic.ppl_gap_pct"] = flat.get("ppl_gap_pct")
    headline["monotonic.attack_reduction_pct"] = flat.get("attack_reduction_pct")
    return lines


_SECTIONS = {
    "ilm": ("ILM: does specialization help?", _ilm),
    "ensemble": ("Ensemble: seq2seq + causal agreement", _ensemble),
    "weighted": ("Weighted loss: acceptance under gamma", _weighted),
    "monotonic": ("Monotonic FFNs: robustness vs perplexity", _monotonic),
}


def build_summary(families: Sequence[FamilyMetrics]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Headline numbers (flat dict) and the Markdown body lines of each family."""
    headline: dict[str, Any] = {}
    bodies: dict[str, list[str]] = {}
    for fam in families:
        title, render = _SECTIONS[fam.family]
        bodies[fam.family] = [f"## {title}", "", *render(fam, headline)]
    return headline, bodies


def render_markdown(
    headline: Mapping[str, Any],
    bodies: Mapping[str, list[str]],
    plots: Mapping[str, Sequence[Path]],
    out_path: Path,
) -> str:
    """The summary page; plots are embedded with paths relative to ``out_path``."""
    lines = [
        "# lmlab summary",
        "",
        "Generated by the `report` stage from the family metrics files (do not edit by hand). "
        "Numbers from the embedded default (synthetic sample data and tiny models) show that the pipeline "
        "works end to end; claims about real learners or real models need the real data and checkpoints.",
        "",
        "## Headline numbers",
        "",
        *_table(["key", "value"], [[f"`{k}`", _num(v)] for k, v in headline.items()]),
        "",
    ]
    for family, body in bodies.items():
        lines += [*body, ""]
        for plot in plots.get(family, ()):
            rel = os.path.relpath(plot, out_path.parent)
            lines += [f"![{plot.stem}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"
