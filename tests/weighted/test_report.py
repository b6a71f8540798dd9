"""Sweep report: collecting experiments, the monotonicity check, plots."""

from __future__ import annotations

import math

from lmlab.weighted.report import monotonicity, plot_by_config, plot_sweep, rows_from_exp_show, sweep_frame


def _metrics(gamma, shift):
    """weighted.json of one experiment: acceptance follows the theory's delta (plus ``shift``)."""
    out = {"gamma": gamma, "baseline": _cfg(1.0, 0.5, 1, 0.5)}
    for q, name in ((0.5, "frac_1_2"), (0.25, "frac_1_4")):
        for variant, up in (("accept", 1), ("reject", 0)):
            delta = math.log(q / (1 - q)) + (1 if up else -1) * math.log(gamma)
            out[f"{name}-{variant}"] = _cfg(gamma, q, up, 1 / (1 + math.exp(-delta)) + shift)
    return out


def _cfg(gamma, q, up, acc_rate):
    return {"accuracy": 0.7, "precision": 0.6, "recall": acc_rate, "f1": 0.65, "acceptance_rate": acc_rate,
            "gamma": gamma, "accept_fraction": q, "upweights_accept": up}


def _exp_show(gammas):
    exps = [{"revs": [{"rev": f"r{g}", "name": f"exp-{g}", "data": {"metrics": {
        "reports/metrics/weighted.json": {"data": _metrics(g, 0.0)}}}}]} for g in gammas]
    return [{"rev": "workspace", "data": {"metrics": {"reports/metrics/weighted.json": {"data": _metrics(4.0, 0.0)}}},
             "experiments": None},
            {"rev": "abc", "name": "main", "data": {"metrics": {}}, "experiments": exps}]


def test_rows_from_exp_show_dedupes_baseline_and_workspace():
    frame = sweep_frame(rows_from_exp_show(_exp_show([2.0, 4.0, 8.0])))
    assert len(frame[frame["config"] == "baseline"]) == 1
    assert sorted(frame[frame["config"] == "frac_1_2-accept"]["gamma"]) == [2.0, 4.0, 8.0]
    assert len(frame) == 1 + 4 * 3


def test_monotonicity_signs_follow_theory():
    frame = sweep_frame(rows_from_exp_show(_exp_show([2.0, 4.0, 8.0])))
    report = monotonicity(frame)
    assert report["groups"]["1/2/accept"]["spearman_rho"] == 1.0  # baseline (gamma 1) joins the 1/2 groups
    assert report["groups"]["1/2/reject"]["spearman_rho"] == -1.0
    assert report["groups"]["1/2/accept"]["gammas"] == [1.0, 2.0, 4.0, 8.0]
    assert report["n_consistent"] == report["n_groups"] == 4
    assert report["spearman_delta_vs_acceptance"] > 0.99
    flipped = frame.copy()
    flipped["acceptance_rate"] = 1 - flipped["acceptance_rate"]
    assert monotonicity(flipped)["n_consistent"] == 0


def test_plots_are_written(tmp_path):
    frame = sweep_frame(rows_from_exp_show(_exp_show([2.0, 4.0])))
    paths = plot_sweep(frame, tmp_path)
    assert {p.name for p in paths} == {"weighted_sweep_acceptance_vs_gamma.png", "weighted_sweep_accuracy_vs_gamma.png",
                                       "weighted_sweep_precision_recall.png", "weighted_sweep_heatmaps.png"}
    metrics = {k: {**v, "gold_acceptance_rate": 0.5, "gen_acceptance_rate": 0.4}
               for k, v in _metrics(4.0, 0.0).items() if k != "gamma"}
    paths += plot_by_config(metrics, tmp_path, 4.0)
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_sweep_command_from_saved_exp_show(tmp_path):
    import json

    from scripts.wl_sweep_report import main

    exp = tmp_path / "exps.json"
    exp.write_text(json.dumps(_exp_show([2.0, 4.0, 8.0])))
    out = tmp_path / "sweep.json"
    assert main(["--exp-json", str(exp), "--out", str(out), "--plots", str(tmp_path / "plots")]) == 0
    report = json.loads(out.read_text())
    assert report["monotonicity"]["n_consistent"] == 4 and len(report["runs"]) == 13
    assert (tmp_path / "sweep.csv").exists()
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["--exp-json", str(empty), "--out", str(tmp_path / "x.json"), "--plots", str(tmp_path)]) == 2
