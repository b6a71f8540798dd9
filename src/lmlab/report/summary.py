"""The cross-family summary: one Markdown page and one JSON file built from the metrics files.

Every number in the summary names the metrics file and key it comes from, so a reader can
trace it (and ``dvc metrics diff`` shows the same keys). Every number of the headline table has a
"95% CI" column, filled from the metrics file by :func:`lmlab.report.intervals.interval_for` (``—`` when the file holds
no interval for that key: the summary never computes or invents one).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.report.intervals import interval_for, is_interval_key, lookup

logger = logging.getLogger(__name__)

__all__ = ["FamilyMetrics", "Headline", "build_summary",
           "headline_keys", "render_markdown"]

LEVELS = ("A1", "A2", "B1", "B2", "C1", "all")
GENERAL = "all"
NO_CI = "—"


@dataclass(frozen=True)
class FamilyMetrics:
    """One family's metrics file: its path (as shown to readers) and parsed content."""

    family: str
    path: str
    data: Mapping[str, Any]


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


def _ci(interval: tuple[Any, Any] | None, digits: int = 3) -> str:
    return NO_CI if interval is None else f"[{_num(interval[0], digits)}, {_num(interval[1], digits)}]"


def _with_ci(data: Mapping[str, Any], path: str | Sequence[str], digits: int = 3) -> str:
    """``value [low, high]``, or just the value when the metrics hold no interval for it."""
    text = _num(lookup(data, path), digits)
    interval = interval_for(data, path)
    return text if interval is None else f"{text} {_ci(interval, digits)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


class Headline(dict):
    """``{key: value}`` of the headline numbers (what ``summary.json`` stores under ``headline``),
    plus per key where it comes from (``sources``: metrics file, dotted key), its 95% interval
    (``intervals``: ``(low, high)`` or None, by :func:`lmlab.report.intervals.interval_for`) and display ``digits``."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[str, tuple[str, str]] = {}
        self.families: dict[str, str] = {}
        self.intervals: dict[str, tuple[Any, Any] | None] = {}
        self.digits: dict[str, int] = {}

    def add(self, key: str, fam: FamilyMetrics, path: str | Sequence[str], *, digits: int = 3,
            optional: bool = False) -> None:
        """Record the number at ``path`` of ``fam`` as ``key`` (skipped if absent and ``optional``)."""
        parts = [str(p) for p in path.split('.')] if isinstance(path, str) else [str(p) for p in path]
        value = lookup(fam.data, parts, _MISSING)
        if value is _MISSING:
            if optional:
                return
            value = None
        self[key] = value
        self.sources[key] = (fam.path, ".".join(parts))
        self.families[key] = fam.family
        self.intervals[key] = interval_for(fam.data, parts)
        self.digits[key] = digits


_MISSING = object()


def _metric_keys(mapping: Any) -> list[str]:
    """The keys of a ``{name: metric}`` dict, without flat interval keys."""
    return [k for k in mapping if not is_interval_key(k)] if isinstance(mapping, Mapping) else []


def _ilm(m: FamilyMetrics, headline: Headline) -> list[str]:
    data = m.data
    ppl = data.get("ppl", {})
    names = _metric_keys(ppl)
    models = [k for k in names if k in LEVELS] + sorted(k for k in names if k not in LEVELS)
    has_ci = any(interval_for(data, ["ppl", model, level]) for model in models for level in LEVELS)
    ci_note = ("; in brackets its 95% bootstrap CI over test documents, keys `ppl_ci.<model>.<test_level>.{low,high}`"
               if has_ci else "; this metrics file has no `ppl_ci` intervals")
    lines = [f"Perplexity of every model on every level's test set (infill text only; source `{m.path}`, "
             f"keys `ppl.<model>.<test_level>`{ci_note}; lower is better, the diagonal is the specialized model "
             "on its own level):", ""]
    rows = [[f"**{model}**"] + [_with_ci(data, ["ppl", model, level], 2) if level in ppl[model] else "n/a"
                                for level in LEVELS] for model in models]
    lines += _table(["model \\ test level", *LEVELS], rows)
    gains = data.get("specialization_gain", {})
    if gains:
        lines += ["", f"Specialization gain = (general ppl - specialized ppl) / general ppl (source `{m.path}`, "
                  "keys `specialization_gain.<level>` and its paired-bootstrap 95% CI "
                  "`specialization_gain_ci.<level>.{low,high}`):", ""]
        rows = []
        for level in _metric_keys(gains):
            interval = interval_for(data, ["specialization_gain", level])
            verdict = "n/a"
            if interval is not None and None not in interval:
                low, high = interval
                verdict = "helps" if low > 0 else "hurts" if high < 0 else "no significant difference"
            rows.append([level, _num(gains[level]), _ci(interval), verdict])
        lines += _table(["level", "gain", "95% CI", "specialization"], rows)
    # Headline: per level the specialized and the general model on that level's test set and the gain
    # (the full matrix with its intervals is the table above).
    for level in (lvl for lvl in LEVELS if lvl != GENERAL):
        headline.add(f"ilm.ppl.{level}.{level}", m, ["ppl", level, level], digits=2, optional=True)
        headline.add(f"ilm.ppl.{GENERAL}.{level}", m, ["ppl", GENERAL, level], digits=2, optional=True)
        headline.add(f"ilm.specialization_gain.{level}", m, ["specialization_gain", level], optional=True)
    headline.add(f"ilm.ppl.{GENERAL}.{GENERAL}", m, ["ppl", GENERAL, GENERAL], digits=2, optional=True)
    for name in _metric_keys(gains):
        if name not in LEVELS:  # e.g. transfer-<level>
            headline.add(f"ilm.specialization_gain.{name}", m, ["specialization_gain", name])
    return lines


def _ensemble(m: FamilyMetrics, headline: Headline) -> list[str]:
    data = m.data
    models = sorted({*_metric_keys(data.get("format_accuracy")), *_metric_keys(data.get("accuracy"))})
    metric_names = ["accuracy", "format_accuracy", "rouge1", "rougeL"]
    rows = [[f"**{model}**"] + [_with_ci(data, [name, model]) for name in metric_names] for model in models]
    lines = [f"Source `{m.path}`: agreement rate **{_with_ci(data, 'agreement_rate')}** over n = "
             f"{_num(data.get('n'))} held-out examples (keys `agreement_rate`, `n`); per model (keys "
             "`<metric>.<model>`; in brackets the 95% CI over test items where the file has one, "
             "`accuracy_ci.<model>.{low,high}`):", ""]
    lines += _table(["model", *metric_names], rows)
    extras = [k for k in ("majority_accuracy", "fleiss_kappa", "copy_baseline_accuracy")
              if isinstance(data.get(k), (int, float))]
    if extras:
        lines += ["", "; ".join(f"`{k}` = {_with_ci(data, k)}" for k in extras)]
    pairs = _metric_keys(data.get("accuracy_difference"))
    if pairs:
        lines += ["", "Paired accuracy difference `accuracy_difference.<a>__<b>` = accuracy(a) - accuracy(b) with its "
                  "95% CI `accuracy_difference_ci.<a>__<b>.{low,high}`: "
                  + "; ".join(f"{pair} {_with_ci(data, ['accuracy_difference', pair])}" for pair in pairs)]
    for model in models:
        headline.add(f"ensemble.accuracy.{model}", m, ["accuracy", model], optional=True)
    for pair in pairs:
        headline.add(f"ensemble.accuracy_difference.{pair}", m, ["accuracy_difference", pair])
    headline.add("ensemble.agreement_rate", m, ["agreement_rate"])
    headline.add("ensemble.majority_accuracy", m, ["majority_accuracy"], optional=True)
    return lines


def _weighted(m: FamilyMetrics, headline: Headline) -> list[str]:
    data = m.data
    names = ["accuracy", "precision", "recall", "f1", "acceptance_rate"]
    configs = [k for k, v in data.items() if not is_interval_key(k) and isinstance(v, Mapping) and "acceptance_rate" in v]
    # Each config's own class weight (`<config>.gamma`): the swept configs run at the param `gamma`, the
    # baseline at `weighted.baseline_gamma` (the file has no top-level `gamma` since issue 17).
    lines = [f"Decision metrics of every config at its class weight on the fixed balanced test set "
             f"(source `{m.path}`, keys `<config>.<metric>` and `<config>.gamma`, in brackets the 95% CI over test "
             "items where the file has one, `<config>.<metric>_ci_{low,high}`; Accept is the positive class):", ""]
    rows = [[f"**{c}**", _num(lookup(data, [c, "gamma"]), 2)] + [_with_ci(data, [c, n]) for n in names]
            for c in configs]
    lines += _table(["config", "gamma", *names], rows)
    for c in configs:
        headline.add(f"weighted.accuracy.{c}", m, [c, "accuracy"], optional=True)
        headline.add(f"weighted.f1.{c}", m, [c, "f1"], optional=True)
        headline.add(f"weighted.acceptance_rate.{c}", m, [c, "acceptance_rate"])
    return lines


def _monotonic(m: FamilyMetrics, headline: Headline) -> list[str]:
    data = m.data
    arms = ("baseline", "monotonic")
    rows = [[f"**{arm}**", _with_ci(data, ["ppl", arm], 2), _with_ci(data, ["uat", arm, "ppl_increase_pct"], 1),
             _with_ci(data, ["hotflip", arm, "success_rate"])] for arm in arms]
    lines = [f"Source `{m.path}` (keys `ppl.<arm>`, `uat.<arm>.ppl_increase_pct`, `hotflip.<arm>.success_rate`; "
             "in brackets the 95% paired bootstrap CI over examples, `<key>_ci_{low,high}`):", ""]
    lines += _table(["model", "perplexity", "UAT ppl increase %", "HotFlip success rate"], rows)
    gap, reduction = (f"**{_num(data.get(k), 1)} %** (`{k}`, 95% CI {_ci(interval_for(data, k), 1)})"
                      for k in ("ppl_gap_pct", "attack_reduction_pct"))
    lines += ["", f"Perplexity gap {gap}; attack success reduction {reduction}, relative, HotFlip."]
    if data.get("attack_reduction_meaningful") is False:
        lines += ["", "**Robustness NOT MEANINGFUL**: the monotone model fails the write-up's perplexity criterion "
                  "(gap < 15 %), so a model that predicts little is trivially hard to attack; the reduction is "
                  "withheld (`attack_reduction_meaningful: false`), never reported as a gain."]
    before = lookup(data, ["ppl", "monotonic_before_recovery"])
    if before is not None:
        lines += ["", f"Right after the constraint, before recovery, the monotone model's perplexity was "
                  f"{_num(before, 2)} (`ppl.monotonic_before_recovery`; its unconstrained start "
                  f"{_num(lookup(data, ['ppl', 'pretrained']), 2)}, `ppl.pretrained`)."]
    criteria = data.get("criteria")
    if isinstance(criteria, Mapping) and criteria:
        verdicts = ", ".join(f"`{k}` {'PASS' if v else 'FAIL'}" for k, v in criteria.items())
        lines += ["", f"Write-up 004's success criteria (`criteria.*`): {verdicts}."]
    headline.add("monotonic.ppl_gap_pct", m, ["ppl_gap_pct"], digits=1)
    headline.add("monotonic.attack_reduction_pct", m, ["attack_reduction_pct"], digits=1)
    return lines


_SECTIONS = {
    "ilm": ("ILM: does specialization help?", _ilm),
    "ensemble": ("Ensemble: seq2seq + causal agreement", _ensemble),
    "weighted": ("Weighted loss: acceptance under gamma", _weighted),
    "monotonic": ("Monotonic FFNs: robustness vs perplexity", _monotonic),
}


def build_summary(families: Sequence[FamilyMetrics]) -> tuple[Headline, dict[str, list[str]]]:
    """Headline numbers (a flat dict with their intervals and sources) and the Markdown body of each family.

    Headline, per family: ILM perplexity of each level's specialized model and of the general model
    on that level's test set (``ilm.ppl.<model>.<level>``) and the specialization gain; ensemble
    accuracy per model, paired accuracy differences, agreement rate, majority-vote accuracy; weighted
    accuracy, F1 and acceptance rate per config; monotonic perplexity gap and attack
    reduction.
    """
    headline = Headline()
    bodies: dict[str, list[str]] = {}
    for fam in families:
        title, render = _SECTIONS[fam.family]
        bodies[fam.family] = [f"## {title}", "", *render(fam, headline)]
    return headline, bodies


def _headline_row(headline: Mapping[str, Any], key: str) -> list[str]:
    digits = getattr(headline, "digits", {}).get(key, 3)
    interval = getattr(headline, "intervals", {}).get(key)
    source = getattr(headline, "sources", {}).get(key)
    where = f"`{os.path.basename(source[0])}`: `{source[1]}`" if source else ""
    return [f"`{key}`", _num(headline[key], digits), _ci(interval, digits), where]


def headline_keys(runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, list[str]]:
    """``{family: [dotted key in its metrics file]}`` of the headline numbers, over several runs.

    ``runs`` maps a run name to ``{family: metrics dict}``; a key present in any run is listed once,
    in headline order (so seed replicates aggregate exactly the numbers of the summary's headline).
    """
    out: dict[str, list[str]] = {}
    for metrics in runs.values():
        headline, _ = build_summary([FamilyMetrics(f, f, data) for f, data in metrics.items() if f in _SECTIONS])
        for key in headline:
            family, dotted = headline.families[key], headline.sources[key][1]
            if dotted not in out.setdefault(family, []):
                out[family].append(dotted)
    return out


def render_markdown(
    headline: Mapping[str, Any],
    bodies: Mapping[str, list[str]],
    plots: Mapping[str, Sequence[Path]],
    out_path: Path,
    extra_sections: Sequence[str] = (),
) -> str:
    """The summary page; plots are embedded with paths relative to ``out_path``.

    ``extra_sections`` (Markdown lines, e.g. the write-up comparison) follow the family sections.
    """
    lines = [
        "# lmlab summary",
        "",
        "Generated by the `report` stage from the family metrics files (do not edit by hand). "
        "Numbers from the embedded default (synthetic sample data and tiny models) show that the pipeline "
        "works end to end; claims about real learners or real models need the real data and checkpoints.",
        "",
        "## Headline numbers",
        "",
        "Each number with its 95% interval over test items as stored in its metrics file "
        f"(`{NO_CI}`: the file has no interval for that key) and its source (metrics file: key). ILM: each "
        "level's specialized model and the general model (`all`) on that level's test set; the full perplexity "
        "matrix with intervals is in the ILM section.",
        "",
        *_table(["key", "value", "95% CI", "source"], [_headline_row(headline, k) for k in headline]),
        "",
    ]
    for family, body in bodies.items():
        lines += [*body, ""]
        for plot in plots.get(family, ()):
            rel = os.path.relpath(plot, out_path.parent)
            lines += [f"![{plot.stem}]({rel})", ""]
    lines += list(extra_sections)
    return "\n".join(lines).rstrip() + "\n"
