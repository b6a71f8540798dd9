"""Data-series files for DVC's own plots (``dvc plots show`` / ``dvc plots diff``).

A PNG can only be put *beside* another revision's PNG; a small JSON file of records is drawn by
DVC's Vega-Lite templates (``simple``, ``scatter``, ``confusion``, ``bar_horizontal``) and
``dvc plots diff A B`` draws both revisions' records in the same chart. The curves follow
DVCLive's ``log_sklearn_plot`` files field for field (``{"roc": [{fpr, tpr, threshold}]}``,
``{"calibration": [{prob_pred, prob_true}]}``, ``[{actual, predicted}]``), computed by
scikit-learn as DVCLive does, but written here with sorted keys, no non-finite numbers (ROC's
first threshold is +inf: it becomes null) and atomically, and without a ``Live`` run (which
needs a git repository and writes its own summary files). Every file is a ``cache: false`` out,
so it lives in git and renders on a fresh clone without ``dvc pull``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_curve

from lmlab.artifacts import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["roc_records", "calibration_records", "confusion_records", "write_plot_file", "CALIBRATION_BINS"]

CALIBRATION_BINS = 10
"""Equal-width probability bins of the calibration curve (DVCLive's and scikit-learn's default is 5)."""


def roc_records(y_true: Sequence[int], y_score: Sequence[float]) -> dict[str, list[dict[str, Any]]]:
    """``{"roc": [{fpr, tpr, threshold}, ...]}`` of binary labels (1 = positive) and scores.

    scikit-learn drops the collinear points (as DVCLive does), which keeps the file small. With a
    single class in ``y_true`` the curve is undefined (the AUC is NaN): an empty series, logged.
    """
    if len(set(np.asarray(y_true).tolist())) < 2:
        logger.warning("ROC curve skipped: the gold labels hold a single class")
        return {"roc": []}
    fpr, tpr, thresholds = roc_curve(np.asarray(y_true), np.asarray(y_score, dtype=float))
    return {"roc": [{"fpr": f, "tpr": t, "threshold": th} for f, t, th in zip(fpr, tpr, thresholds)]}


def calibration_records(y_true: Sequence[int], y_prob: Sequence[float], n_bins: int = CALIBRATION_BINS
                        ) -> dict[str, list[dict[str, Any]]]:
    """``{"calibration": [{prob_pred, prob_true, n}, ...]}``: per non-empty uniform bin, the mean
    predicted probability, the observed fraction of positives and how many items fell in it."""
    y_prob = np.asarray(y_prob, dtype=float)
    prob_true, prob_pred = calibration_curve(np.asarray(y_true), y_prob, n_bins=n_bins, strategy="uniform")
    # the bin counts, binned exactly as calibration_curve bins (it drops empty bins, in the same order)
    counts = np.bincount(np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], y_prob), minlength=n_bins)
    counts = counts[counts > 0]
    return {"calibration": [{"prob_pred": pp, "prob_true": pt, "n": int(n)}
                            for pp, pt, n in zip(prob_pred, prob_true, counts)]}


def confusion_records(actual: Iterable[Any], predicted: Iterable[Any], missing: str = "(none)"
                      ) -> list[dict[str, str]]:
    """``[{actual, predicted}, ...]`` one per item, as strings (DVC's ``confusion`` template counts
    them); a missing prediction (``None``: unparseable output) is ``missing``."""
    return [{"actual": str(a), "predicted": missing if p is None else str(p)} for a, p in zip(actual, predicted)]


def write_plot_file(path: str | Path, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Path:
    """Write one plot-data JSON atomically (sorted keys, compact rows, non-finite -> null)."""
    atomic_write_json(path, data, indent=1)
    return Path(path)
