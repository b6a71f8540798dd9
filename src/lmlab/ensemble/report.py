"""The Ensemble report: per-example records and a summary from n models' outputs on the test split.

Pure functions of (gold rows, predictions by model): field extraction, canonical labels,
lenient/strict format checks, full agreement (canonical and upstream-legacy), pairwise
agreement with Cohen's kappa, Fleiss' kappa (n > 2), per-model and majority-vote accuracy
(ties reported), accuracy on the agreed vs the disagreed subset, ROUGE-1/ROUGE-L
(``rouge-score``, target first) on whole outputs and on the explanation field, the
copy-from-instruction baseline, and the flat metrics file of the pipeline contract. Every record
also carries the write-up's own string-agreement analysis (``writeup``,
:mod:`lmlab.ensemble.string_agreement`) and its excerpt length; the summary its block ``writeup``.

Every headline rate (per-model accuracy, full agreement, majority-vote accuracy) and the paired
difference of accuracies of every model pair carries a 95% percentile-bootstrap interval over
test items (:func:`accuracy_intervals`, :func:`lmlab.statistics.bootstrap_ci`, ``N_RESAMPLES``
resamples, seeded by the pipeline's ``seed``). All intervals resample the *same* items, so a
difference's interval is paired: the items both models get right or wrong cancel out of it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer

from lmlab.ensemble.agreement import (
    cohen_kappa,
    fleiss_kappa,
    fleiss_table,
    full_agreement,
    majority_vote,
    pairwise_agreement,
)
from lmlab.ensemble.labels import (
    CANONICAL,
    extract_fields,
    find_class_in_text,
    format_ok_lenient,
    format_ok_strict,
    normalize_gadget_type,
    normalize_legacy,
)
from lmlab.ensemble.string_agreement import (
    Normalizer,
    analyze_example,
    excerpt_length,
    summarize_string_agreement,
)
from lmlab.statistics import bootstrap_ci

logger = logging.getLogger(__name__)

__all__ = ["parse_prediction", "build_records", "summarize", "accuracy_intervals", "rouge_means",
           "contract_metrics", "plot_agreement_matrix", "plot_class_accuracy", "write_plot_data", "N_RESAMPLES"]

N_RESAMPLES = 2000
"""Bootstrap resamples behind every interval (a module constant: not a pipeline param)."""
CONFIDENCE = 0.95


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def parse_prediction(output: str, gold_class: str, fuzzy_threshold: float = 0.75) -> dict[str, Any]:
    """Fields, canonical label, legacy label and format checks of one model output."""
    fields = extract_fields(output)
    label = normalize_gadget_type(fields["gadget_type"], fuzzy_threshold)
    return {
        "output": output,
        "gadget_type_raw": fields["gadget_type"],
        "gadget_type": label,
        "gadget_type_legacy": normalize_legacy(fields["gadget_type"]),
        "location": fields["location"],
        "explanation": fields["explanation"],
        "format_lenient": format_ok_lenient(output),
        "format_strict": format_ok_strict(output),
        "correct": label is not None and label == gold_class,
    }


def build_records(
    gold_rows: Sequence[Mapping[str, Any]],
    predictions: Mapping[str, Sequence[str]],
    priority: Sequence[str],
    fuzzy_threshold: float = 0.75,
    writeup_normalizer: Normalizer = "writeup",
) -> list[dict[str, Any]]:
    """One record per test example: gold, every model's parsed prediction, agreement and vote,
    and the write-up's string analysis (``writeup``) with the excerpt's length."""
    models = list(predictions)
    order = [models.index(m) for m in priority if m in models] + [i for i, m in enumerate(models) if m not in priority]
    records = []
    for i, row in enumerate(gold_rows):
        gold = row.get("gold_class") or normalize_gadget_type(extract_fields(row["output"])["gadget_type"])
        preds = {m: parse_prediction(predictions[m][i], gold, fuzzy_threshold) for m in models}
        labels = [preds[m]["gadget_type"] for m in models]
        legacy = [preds[m]["gadget_type_legacy"] for m in models]
        vote = majority_vote(labels, order)
        original = row.get("instruction_original", row["instruction"])
        records.append({
            "row_id": row.get("row_id", i),
            "instruction": row["instruction"],
            "input": row["input"],
            "gold_output": row["output"],
            "gold_class": gold,
            "predictions": preds,
            "full_agreement": full_agreement(labels),
            "legacy_agreement": bool(legacy[0]) and len(set(legacy)) == 1,
            "vote": {"label": vote.label, "status": vote.status, "winners": list(vote.winners),
                     "tiebreak_label": vote.tiebreak_label},
            "majority_correct": vote.label is not None and vote.label == gold,
            "tiebreak_correct": (vote.label or vote.tiebreak_label) == gold,
            "copy_baseline": find_class_in_text(original),
            "copy_baseline_stripped": find_class_in_text(row["instruction"]),
            "excerpt_length": excerpt_length(row["input"]),
            "writeup": analyze_example({m: preds[m]["gadget_type_raw"] for m in models}, writeup_normalizer),
        })
    return records


def rouge_means(golds: Sequence[str], preds: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1 / ROUGE-L F1 (Porter stemming); ``score(target, prediction)`` order."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    scores = [scorer.score(target=g or "", prediction=p or "") for g, p in zip(golds, preds)]
    return {
        "rouge1": _mean([s["rouge1"].fmeasure for s in scores]),
        "rougeL": _mean([s["rougeL"].fmeasure for s in scores]),
    }


def _rate(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def _rate_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=-1) - b.mean(axis=-1)


def _interval(samples: Sequence[np.ndarray], statistic, seed: int, n_resamples: int) -> dict[str, Any]:
    if not samples[0].size:  # no test items: nothing to resample
        return {"estimate": float("nan"), "low": float("nan"), "high": float("nan"), "confidence": CONFIDENCE,
                "n_resamples": n_resamples, "n": 0}
    ci = bootstrap_ci(samples, statistic, paired=True, n_resamples=n_resamples, confidence=CONFIDENCE, seed=seed)
    return ci.as_dict()


def accuracy_intervals(records: Sequence[Mapping[str, Any]], models: Sequence[str], *, seed: int = 0,
                       n_resamples: int = N_RESAMPLES) -> dict[str, Any]:
    """95% percentile-bootstrap intervals over test items of the headline rates.

    Returns ``{"accuracy": {model: ci}, "agreement_rate": ci, "majority_accuracy": ci,
    "accuracy_difference": {"a__b": ci}}`` where every ``ci`` is
    :meth:`lmlab.statistics.BootstrapCI.as_dict` (``estimate``, ``low``, ``high``, ...). The
    difference is ``accuracy(a) - accuracy(b)`` for every pair in sorted order (the ``a__b`` keys of
    the pairwise agreement), bootstrapped paired over the same items.
    """
    correct = {m: np.asarray([bool(r["predictions"][m]["correct"]) for r in records], dtype=np.float64)
               for m in models}
    agreed = np.asarray([bool(r["full_agreement"]) for r in records], dtype=np.float64)
    majority = np.asarray([bool(r["majority_correct"]) for r in records], dtype=np.float64)
    return {
        "accuracy": {m: _interval([correct[m]], _rate, seed, n_resamples) for m in models},
        "agreement_rate": _interval([agreed], _rate, seed, n_resamples),
        "majority_accuracy": _interval([majority], _rate, seed, n_resamples),
        "accuracy_difference": {f"{a}__{b}": _interval([correct[a], correct[b]], _rate_difference, seed, n_resamples)
                                for a, b in itertools.combinations(sorted(models), 2)},
    }


def summarize(records: Sequence[Mapping[str, Any]], models: Sequence[str], *, seed: int = 0,
              n_resamples: int = N_RESAMPLES, length_bins: int = 3,
              writeup_normalizer: Normalizer = "writeup") -> dict[str, Any]:
    """Summary statistics of the records (see the module docstring).

    ``intervals`` holds :func:`accuracy_intervals` (bootstrap seeded by ``seed``); ``writeup`` the
    write-up's summary with disagreement by excerpt length in ``length_bins`` bins.
    """
    n = len(records)
    labels = {m: [r["predictions"][m]["gadget_type"] for r in records] for m in models}
    agreed = [r for r in records if r["full_agreement"]]
    disagreed = [r for r in records if not r["full_agreement"]]
    statuses = Counter(r["vote"]["status"] for r in records)
    summary: dict[str, Any] = {
        "n": n,
        "models": list(models),
        "agreement_rate": _mean([r["full_agreement"] for r in records]),
        "legacy_agreement_rate": _mean([r["legacy_agreement"] for r in records]),
        "pairwise": pairwise_agreement(labels),
        "accuracy": {m: _mean([r["predictions"][m]["correct"] for r in records]) for m in models},
        "valid_rate": {m: _mean([labels[m][i] is not None for i in range(n)]) for m in models},
        "format_accuracy": {m: _mean([r["predictions"][m]["format_lenient"] for r in records]) for m in models},
        "format_accuracy_strict": {m: _mean([r["predictions"][m]["format_strict"] for r in records]) for m in models},
        "majority": {
            "accuracy": _mean([r["majority_correct"] for r in records]),
            "accuracy_with_tiebreak": _mean([r["tiebreak_correct"] for r in records]),
            "tie_rate": statuses.get("tie", 0) / n if n else 0.0,
            "no_valid_rate": statuses.get("no_valid", 0) / n if n else 0.0,
            "status_counts": dict(sorted(statuses.items())),
        },
        "agreed": {"n": len(agreed), "accuracy": _mean([r["majority_correct"] for r in agreed])},
        "disagreed": {
            "n": len(disagreed),
            "accuracy": {m: _mean([r["predictions"][m]["correct"] for r in disagreed]) for m in models},
        },
        "copy_baseline": {
            "accuracy_original_instruction": _mean([r["copy_baseline"] == r["gold_class"] for r in records]),
            "accuracy_prompt_instruction": _mean([r["copy_baseline_stripped"] == r["gold_class"] for r in records]),
        },
        "majority_class_baseline": Counter(r["gold_class"] for r in records).most_common(1)[0][1] / n if n else 0.0,
        "per_class_accuracy": {
            m: {c: _mean([r["predictions"][m]["correct"] for r in records if r["gold_class"] == c])
                for c in CANONICAL if any(r["gold_class"] == c for r in records)}
            for m in models
        },
        "rouge": {},
        "intervals": accuracy_intervals(records, models, seed=seed, n_resamples=n_resamples),
        "writeup": summarize_string_agreement(records, models, length_bins, writeup_normalizer),
    }
    if len(models) > 2:
        summary["fleiss_kappa"] = fleiss_kappa(fleiss_table([labels[m] for m in models])[0])
    for m in models:
        whole = rouge_means([r["gold_output"] for r in records], [r["predictions"][m]["output"] for r in records])
        gold_expl = [extract_fields(r["gold_output"])["explanation"] or "" for r in records]
        expl = rouge_means(gold_expl, [r["predictions"][m]["explanation"] or "" for r in records])
        summary["rouge"][m] = {**whole, "rouge1_explanation": expl["rouge1"], "rougeL_explanation": expl["rougeL"]}
    gold_labels = [r["gold_class"] for r in records]
    summary["cohen_kappa_vs_gold"] = {m: cohen_kappa(labels[m], gold_labels) for m in models} if n else {}
    return summary


def contract_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``reports/metrics/ensemble.json``: the contract keys plus a few flat extras.

    95% intervals (from ``summary["intervals"]``): ``accuracy_ci.<model>.{low,high}``,
    ``agreement_rate_ci_{low,high}``, ``majority_accuracy_ci_{low,high}``, and the paired
    difference ``accuracy_difference.<a>__<b>`` = accuracy(a) - accuracy(b) with
    ``accuracy_difference_ci.<a>__<b>.{low,high}``. The write-up's own summary, three numbers:
    ``writeup_full_agreement_rate`` (normalised strings), ``writeup_disagreement_rate`` and
    ``disagreement_length_spearman`` (excerpt words vs per-example disagreement; absent when
    undefined); its per-example fields stay in the report.
    """
    models = summary["models"]
    intervals = summary["intervals"]
    out: dict[str, Any] = {
        "n": summary["n"],
        "agreement_rate": summary["agreement_rate"],
        "format_accuracy": dict(summary["format_accuracy"]),
        "rouge1": {m: summary["rouge"][m]["rouge1"] for m in models},
        "rougeL": {m: summary["rouge"][m]["rougeL"] for m in models},
        "format_accuracy_strict": dict(summary["format_accuracy_strict"]),
        "accuracy": dict(summary["accuracy"]),
        "rougeL_explanation": {m: summary["rouge"][m]["rougeL_explanation"] for m in models},
        "majority_accuracy": summary["majority"]["accuracy"],
        "tie_rate": summary["majority"]["tie_rate"],
        "agreed_accuracy": summary["agreed"]["accuracy"],
        "cohen_kappa": {pair: v["cohen_kappa"] for pair, v in summary["pairwise"].items()},
        "copy_baseline_accuracy": summary["copy_baseline"]["accuracy_original_instruction"],
        "copy_baseline_prompt_accuracy": summary["copy_baseline"]["accuracy_prompt_instruction"],
        "accuracy_ci": {m: _low_high(intervals["accuracy"][m]) for m in models},
        "agreement_rate_ci_low": intervals["agreement_rate"]["low"],
        "agreement_rate_ci_high": intervals["agreement_rate"]["high"],
        "majority_accuracy_ci_low": intervals["majority_accuracy"]["low"],
        "majority_accuracy_ci_high": intervals["majority_accuracy"]["high"],
        "accuracy_difference": {pair: ci["estimate"] for pair, ci in intervals["accuracy_difference"].items()},
        "accuracy_difference_ci": {pair: _low_high(ci) for pair, ci in intervals["accuracy_difference"].items()},
    }
    writeup = summary.get("writeup")
    if writeup:
        out["writeup_full_agreement_rate"] = writeup["full_agreement_rate"]
        out["writeup_disagreement_rate"] = writeup["disagreement_rate"]
        rho = writeup["by_excerpt_length"]["spearman"]
        if rho is not None and math.isfinite(rho):
            out["disagreement_length_spearman"] = rho
    if "fleiss_kappa" in summary:
        out["fleiss_kappa"] = summary["fleiss_kappa"]
    if "judge" in summary:
        out["judge_full_rate"] = summary["judge"]["rates"]["FULL"]
    return out


def _low_high(ci: Mapping[str, Any]) -> dict[str, float]:
    return {"low": ci["low"], "high": ci["high"]}


def plot_agreement_matrix(labels: Mapping[str, Sequence[str | None]], path: str | Path) -> None:
    """Heatmap of pairwise raw agreement (diagonal = valid-label rate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.artifacts import atomic_path

    models = list(labels)
    n = len(models)
    mat = [[_mean([x is not None and x == y for x, y in zip(labels[a], labels[b])]) for b in models] for a in models]
    fig, ax = plt.subplots(figsize=(2.2 + 1.1 * n, 1.8 + 1.0 * n))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(n), models, rotation=30, ha="right")
    ax.set_yticks(range(n), models)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{mat[i][j]:.2f}", ha="center", va="center", color="w" if mat[i][j] < 0.6 else "k")
    ax.set_title("Ensemble: pairwise label agreement")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def plot_class_accuracy(per_class: Mapping[str, Mapping[str, float]], path: str | Path) -> None:
    """Grouped bars: accuracy per gold class for every model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmlab.artifacts import atomic_path

    models = list(per_class)
    classes = [c for c in CANONICAL if any(c in per_class[m] for m in models)]
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(10, 4))
    for k, m in enumerate(models):
        xs = [i + k * width for i in range(len(classes))]
        ax.bar(xs, [per_class[m].get(c, 0.0) for c in classes], width=width, label=m)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], [c.lower() for c in classes],
                  rotation=25, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("Ensemble: accuracy by gold gadget class")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_plot_data(records: Sequence[Mapping[str, Any]], models: Sequence[str], out_dir: str | Path) -> list[Path]:
    """``ens_compare``'s DVC plot data: ``confusion/<model>.json`` (one chart per model), one ``{actual, predicted}`` row
    per test item (gold class vs the model's canonical class; an unparseable answer is ``(none)``)
    for DVC's ``confusion`` template. The directory is replaced as a whole (atomically)."""
    from lmlab.artifacts import atomic_dir
    from lmlab.plot_data import confusion_records, write_plot_file

    written: list[Path] = []
    with atomic_dir(out_dir) as tmp:
        for m in models:
            rows = confusion_records([r["gold_class"] for r in records],
                                     [r["predictions"][m]["gadget_type"] for r in records])
            written.append(write_plot_file(tmp / "confusion" / f"{m}.json", rows))
    return [Path(out_dir) / p.relative_to(tmp) for p in written]
