"""lmlab.plot_data: DVCLive-format curves (ROC, calibration, confusion) as strict JSON files."""

from __future__ import annotations

import json
import math

import numpy as np
from sklearn.metrics import roc_auc_score

from lmlab.plot_data import calibration_records, confusion_records, roc_records, write_plot_file

Y = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0]
P = [0.1, 0.45, 0.35, 0.85, 0.15, 0.9, 0.65, 0.55, 0.7, 0.05]


def test_roc_curve_integrates_to_the_auc_and_writes_strict_json(tmp_path):
    curve = roc_records(Y, P)["roc"]
    fpr, tpr = [r["fpr"] for r in curve], [r["tpr"] for r in curve]
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert math.isclose(float(np.trapezoid(tpr, fpr)), roc_auc_score(Y, P))
    path = write_plot_file(tmp_path / "roc" / "x.json", {"roc": curve})
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text  # ROC's first threshold is +inf
    assert json.loads(text)["roc"][0]["threshold"] is None


def test_calibration_bins_count_every_item_and_match_the_observed_rates():
    rows = calibration_records(Y, P, n_bins=5)["calibration"]
    assert sum(r["n"] for r in rows) == len(Y)
    for r in rows:  # recompute each bin by hand: [0, .2), [.2, .4), ... (no P on a boundary)
        members = [(y, p) for y, p in zip(Y, P) if int(p * 5) == int(r["prob_pred"] * 5)]
        assert len(members) == r["n"]
        assert math.isclose(r["prob_true"], sum(y for y, _ in members) / len(members))
        assert math.isclose(r["prob_pred"], sum(p for _, p in members) / len(members))


def test_confusion_rows_are_strings_and_a_missing_prediction_is_named():
    assert confusion_records(["a", 1], [None, 1]) == [{"actual": "a", "predicted": "(none)"},
                                                       {"actual": "1", "predicted": "1"}]


def test_roc_of_a_single_class_is_an_empty_curve_not_nan():
    assert roc_records([1, 1, 1], [0.2, 0.5, 0.9]) == {"roc": []}
