"""The write-up's own agreement analysis (002, step 6): normalised gadget-type strings, per example.

lmlab compares canonical classes (:mod:`lmlab.ensemble.labels`, :mod:`lmlab.ensemble.agreement`);
the write-up compared *strings*: each model's ``gadget_type:`` text, lowercased, with
"gadget"/"gadgets", spaces, hyphens, punctuation and the substring "and" removed
(:func:`lmlab.ensemble.labels.normalize_legacy`). Its numbers - the 10 % full agreement, the
90 % disagreement - are only comparable with lmlab's when computed the same way, so this module
reproduces its per-example analysis field by field (``full_agreement``, ``unique_types``,
``gadget_types``, ``normalized_types``, ``unique_normalized_types``, ``majority_type``) and its
summary (``full_agreements``, ``full_agreement_rate``, ``disagreement_rate``).

Two additions answer the write-up's own research question 1 ("Do disagreements correlate with
excerpt length?"): a per-example ``disagreement_rate`` (the share of model pairs whose normalised
types differ or are empty: 0 or 1 with two models, so its mean is the write-up's summary rate)
and disagreement by excerpt length (equal-frequency length bins and a Spearman correlation).

Where the write-up and its script disagree - the script removes only whitespace, ``-``, ``_``
and ``/``, the write-up says "punctuation" - ``normalizer`` picks the reading: ``writeup``
(default) or ``upstream``.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmlab.artifacts import atomic_path
from lmlab.ensemble.labels import normalize_legacy

__all__ = ["Normalizer", "NORMALIZERS", "writeup_normalize", "analyze_example", "excerpt_length",
           "disagreement_by_length", "summarize_string_agreement", "example_table", "write_example_table"]

Normalizer = Literal["writeup", "upstream"]
NORMALIZERS: tuple[str, ...] = ("writeup", "upstream")


def writeup_normalize(raw: str | None, normalizer: Normalizer = "writeup") -> str:
    """The write-up's string normalisation (``""`` when there is no gadget type)."""
    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer: one of {NORMALIZERS}, got {normalizer!r}")
    return normalize_legacy(raw, strip_punctuation=normalizer == "writeup")


def analyze_example(gadget_types: Mapping[str, str | None], normalizer: Normalizer = "writeup") -> dict[str, Any]:
    """The write-up's ``agreement`` entry of one example, from each model's raw gadget type.

    A missing gadget type is ``""`` (the script's regex found nothing) and competes in the
    majority like any other value; full agreement needs one normalised value that is not empty.
    ``majority_type`` is the most common normalised value, ties going to the first model (with two
    models the write-up calls it "a tie-breaker"); ``majority_type_original`` is that model's text.
    """
    if not gadget_types:
        raise ValueError("analyze_example: no models")
    types = {m: (t or "").strip() for m, t in gadget_types.items()}
    normalized = {m: writeup_normalize(t, normalizer) for m, t in types.items()}
    unique_normalized = list(dict.fromkeys(normalized.values()))
    full = len(unique_normalized) == 1 and unique_normalized[0] != ""
    majority, count = Counter(normalized.values()).most_common(1)[0]
    pairs = list(itertools.combinations(normalized.values(), 2))
    if pairs:
        disagreement = sum(not a or not b or a != b for a, b in pairs) / len(pairs)
    else:
        disagreement = 0.0 if full else 1.0
    return {
        "full_agreement": full,
        "gadget_types": types,
        "unique_types": list(dict.fromkeys(types.values())),
        "normalized_types": normalized,
        "unique_normalized_types": unique_normalized,
        "majority_type": majority,
        "majority_type_original": next(types[m] for m in types if normalized[m] == majority),
        "majority_count": count,
        "disagreement_rate": disagreement,
    }


def excerpt_length(text: str) -> dict[str, int]:
    """Length of an excerpt in whitespace words and in characters."""
    return {"words": len((text or "").split()), "chars": len(text or "")}


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho, NaN when either side is constant (undefined, not zero)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def disagreement_by_length(
    lengths: Sequence[int], disagreement: Sequence[float], canonical_disagreement: Sequence[float], n_bins: int,
) -> dict[str, Any]:
    """Disagreement per excerpt-length bin (equal-frequency cut points; ties stay in one bin).

    ``disagreement`` is the write-up's per-example rate, ``canonical_disagreement`` lmlab's
    (1 - canonical full agreement); both are reported per bin, with Spearman's rho of length vs
    each over all examples.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins: must be >= 1, got {n_bins}")
    x = np.asarray(lengths, dtype=np.float64)
    bins: list[dict[str, Any]] = []
    if x.size:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        index = np.searchsorted(edges, x, side="right")
        d, c = np.asarray(disagreement, dtype=np.float64), np.asarray(canonical_disagreement, dtype=np.float64)
        for b in range(len(edges) + 1):
            mask = index == b
            if not mask.any():
                continue
            bins.append({
                "min_words": int(x[mask].min()), "max_words": int(x[mask].max()), "n": int(mask.sum()),
                "disagreement_rate": float(d[mask].mean()),
                "disagreement_rate_canonical": float(c[mask].mean()),
            })
    return {
        "unit": "words",
        "bins": bins,
        "spearman": _spearman(list(lengths), list(disagreement)),
        "spearman_canonical": _spearman(list(lengths), list(canonical_disagreement)),
    }


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


def summarize_string_agreement(records: Sequence[Mapping[str, Any]], models: Sequence[str], n_bins: int,
                               normalizer: Normalizer = "writeup") -> dict[str, Any]:
    """The write-up's summary block, from records carrying ``writeup`` and ``excerpt_length``.

    ``model_format_accuracy`` is the write-up's check (all three keys present: lmlab's lenient
    format); ``full_agreement_rate_canonical`` is lmlab's rate on the same examples, for the gap.
    """
    n = len(records)
    full = [bool(r["writeup"]["full_agreement"]) for r in records]
    rate = _mean(full)
    return {
        "normalizer": normalizer,
        "total_examples": n,
        "full_agreements": sum(full),
        "full_agreement_rate": rate,
        "disagreement_rate": 1.0 - rate if not math.isnan(rate) else float("nan"),
        "full_agreement_rate_canonical": _mean([bool(r["full_agreement"]) for r in records]),
        "mean_unique_types": _mean([len(r["writeup"]["unique_types"]) for r in records]),
        "mean_unique_normalized_types": _mean([len(r["writeup"]["unique_normalized_types"]) for r in records]),
        "model_format_accuracy": {m: _mean([bool(r["predictions"][m]["format_lenient"]) for r in records])
                                  for m in models},
        "by_excerpt_length": disagreement_by_length(
            [r["excerpt_length"]["words"] for r in records],
            [r["writeup"]["disagreement_rate"] for r in records],
            [0.0 if r["full_agreement"] else 1.0 for r in records], n_bins),
    }


def example_table(records: Sequence[Mapping[str, Any]], models: Sequence[str]) -> list[dict[str, Any]]:
    """One flat row per example (the CSV beside the JSON report): lengths, each model's raw,
    normalised and canonical type, the write-up's agreement fields and lmlab's."""
    rows = []
    for r in records:
        w = r["writeup"]
        row: dict[str, Any] = {
            "row_id": r["row_id"], "excerpt_words": r["excerpt_length"]["words"],
            "excerpt_chars": r["excerpt_length"]["chars"], "gold_class": r["gold_class"],
        }
        for m in models:
            row[f"{m}.gadget_type"] = w["gadget_types"][m]
            row[f"{m}.normalized_type"] = w["normalized_types"][m]
            row[f"{m}.canonical_type"] = r["predictions"][m]["gadget_type"] or ""
            row[f"{m}.format_ok"] = int(bool(r["predictions"][m]["format_lenient"]))
        row.update({
            "full_agreement": int(w["full_agreement"]),
            "unique_types": " | ".join(w["unique_types"]),
            "unique_normalized_types": " | ".join(w["unique_normalized_types"]),
            "majority_type": w["majority_type"], "majority_count": w["majority_count"],
            "disagreement_rate": w["disagreement_rate"],
            "full_agreement_canonical": int(bool(r["full_agreement"])),
        })
        rows.append(row)
    return rows


def write_example_table(path: str | Path, records: Sequence[Mapping[str, Any]], models: Sequence[str]) -> None:
    """:func:`example_table` as a CSV, written atomically."""
    table = example_table(records, models)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["row_id"])
        writer.writeheader()
        writer.writerows(table)
