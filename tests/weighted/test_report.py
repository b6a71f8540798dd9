"""Sweep report: collecting experiments, the monotonicity check, plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from lmlab.weighted.report import (
    monotonicity,
    plot_by_config,
    plot_sweep,
    rows_from_exp_show,
    seed_means,
    sweep_frame,
    sweep_report,
)


def _metrics(gamma, shift):
    """weighted.json of one experiment: acceptance follows the theory's delta (plus ``shift``)."""
    out = {"gamma": gamma, "odds_1_2-baseline": _cfg(1.0, 1 / 3, 1, 1 / 3)}  # delta = log(1/2) at gamma 1
    for q, name in ((1 / 3, "odds_1_2"), (0.2, "odds_1_4")):
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
    assert len(frame[frame["config"] == "odds_1_2-baseline"]) == 1
    assert sorted(frame[frame["config"] == "odds_1_2-accept"]["gamma"]) == [2.0, 4.0, 8.0]
    assert len(frame) == 1 + 4 * 3


def test_monotonicity_signs_follow_theory():
    frame = sweep_frame(rows_from_exp_show(_exp_show([2.0, 4.0, 8.0])))
    report = monotonicity(frame)
    assert report["groups"]["1:2/accept"]["spearman_rho"] == 1.0  # baseline (gamma 1) joins the odds 1:2 (1/3) groups
    assert report["groups"]["1:2/reject"]["spearman_rho"] == -1.0
    assert report["groups"]["1:2/accept"]["gammas"] == [1.0, 2.0, 4.0, 8.0]
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
    from scripts.wl_sweep_report import main

    exp = tmp_path / "exps.json"
    exp.write_text(json.dumps(_exp_show([2.0, 4.0, 8.0])))
    out = tmp_path / "sweep.json"
    assert main(["--exp-json", str(exp), "--out", str(out), "--plots", str(tmp_path / "plots")]) == 0
    report = json.loads(out.read_text())
    assert report["monotonicity"]["n_consistent"] == 4 and len(report["runs"]) == 13
    assert (tmp_path / "sweep.csv").exists()
    # the criteria see the repository's grid: odds 1:4 runs at gamma 8 are outside it, odds 1:3 and 1:8 missing
    assert len(report["grid"]) == 19
    assert sorted(report["runs_outside_grid"]) == ["odds_1_4-accept@gamma=8", "odds_1_4-reject@gamma=8"]
    criteria = {c["name"]: c for c in report["criteria"]}
    assert criteria["grid_complete"]["passed"] is False and criteria["grid_complete"]["value"] == 11.0
    assert "odds_1_8-reject@gamma=4" in criteria["grid_complete"]["evidence"]["missing"]
    assert criteria["monotone_gamma_effect"]["passed"] is True and criteria["monotone_gamma_effect"]["value"] == 1.0
    assert criteria["acceptance_span_low"]["value"] == pytest.approx(1 / 17)  # odds 1:2, reject, gamma 8
    assert criteria["acceptance_span_high"]["value"] == pytest.approx(0.8) and criteria["acceptance_span_high"]["passed"]
    assert criteria["accuracy_for_most"]["passed"] and criteria["valid_predictions"]["passed"] is None
    table = (tmp_path / "sweep_criteria.md").read_text()
    assert "| All 19 training jobs complete without errors | FAIL | 11 of 19 grid runs have metrics" in table
    assert "| 1:2/accept | 1, 2, 4, 8 | 0.333, 0.500, 0.667, 0.800 | up | yes |" in table
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["--exp-json", str(empty), "--out", str(tmp_path / "x.json"), "--plots", str(tmp_path)]) == 2


def _with_ci(metrics, half_width=0.05):
    """weighted.json with the 95% interval keys wl_eval writes (plus an unrelated extra key)."""
    out = {"gamma": metrics["gamma"]}
    for name, cfg in metrics.items():
        if name == "gamma":
            continue
        ci = {f"{k}_ci_{side}": cfg[k] + (half_width if side == "high" else -half_width)
              for k in ("accuracy", "f1", "acceptance_rate") for side in ("low", "high")}
        out[name] = {**cfg, **ci, "auc": 0.8}
    return out


def test_interval_keys_do_not_confuse_the_sweep_and_are_carried_along(tmp_path):
    from lmlab.weighted.report import CI_COLUMNS, rows_from_metrics

    with_ci = rows_from_metrics(_with_ci(_metrics(4.0, 0.0)), "new")
    plain = rows_from_metrics(_metrics(2.0, 0.0), "old")  # an experiment from before the intervals
    assert len(with_ci) == len(plain) == 5  # still one row per config, `gamma` still skipped
    assert all(set(CI_COLUMNS) <= set(r) and "auc" not in r for r in with_ci)
    assert not any(set(CI_COLUMNS) & set(r) for r in plain)
    frame = sweep_frame(with_ci + plain)
    assert len(frame) == 1 + 4 * 2
    new = frame[(frame["config"] == "odds_1_2-accept") & (frame["gamma"] == 4.0)].iloc[0]
    assert new["accuracy_ci_low"] == pytest.approx(0.65) and new["acceptance_rate_ci_high"] > new["acceptance_rate"]
    assert frame[frame["gamma"] == 2.0]["accuracy_ci_low"].isna().all()
    assert monotonicity(frame)["n_groups"] == 4
    report = sweep_report(with_ci + plain, tmp_path / "sweep.json", tmp_path)  # runs with and without intervals
    assert all(Path(p).stat().st_size > 1000 for p in report["plots"])
    runs = json.loads((tmp_path / "sweep.json").read_text())["runs"]
    assert {r["accuracy_ci_low"] is None for r in runs} == {True, False}  # missing bounds are JSON null


def test_error_bars_need_every_bound():
    from lmlab.weighted.report import _yerr

    assert _yerr([0.5, 0.7], [0.4, 0.6], [0.65, 0.75]) == [pytest.approx([0.1, 0.1]), pytest.approx([0.15, 0.05])]
    assert _yerr([0.5, 0.7], [0.4, None], [0.65, 0.75]) is None
    assert _yerr([0.5], [float("nan")], [0.6]) is None


def test_plot_by_config_draws_interval_whiskers(tmp_path, monkeypatch):
    metrics = {k: {**v, "gold_acceptance_rate": 0.5, "gen_acceptance_rate": 0.4}
               for k, v in _with_ci(_metrics(4.0, 0.0)).items() if k != "gamma"}
    captured = []
    original = plt.Axes.bar

    def spy(self, *args, **kwargs):
        captured.append(kwargs.get("yerr"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "bar", spy)
    paths = plot_by_config(metrics, tmp_path, 4.0)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
    assert len(captured) == 3 and all(err is not None for err in captured)  # acceptance, accuracy, F1
    below, above = captured[0]
    assert below == pytest.approx([0.05] * len(metrics)) and above == pytest.approx([0.05] * len(metrics))


def _exp_show_seeds(gammas, seeds, shift_of_seed):
    """Experiments over gamma x seed; the params carry the seed, acceptance is shifted per seed."""
    exps = [{"revs": [{"rev": f"r{g}-{s}", "name": f"exp-{g}-{s}", "data": {
        "params": {"params.yaml": {"data": {"seed": s, "gamma": g}}},
        "metrics": {"reports/metrics/weighted.json": {"data": _metrics(g, shift_of_seed(s))}}}}]}
        for g in gammas for s in seeds]
    return [{"rev": "abc", "name": "main", "data": {"metrics": {}}, "experiments": exps}]


def test_seed_replicates_are_kept_and_averaged(tmp_path):
    from scripts.wl_sweep_report import main

    frame = sweep_frame(rows_from_exp_show(_exp_show_seeds([2.0, 4.0], [0, 1, 2], lambda s: 0.01 * s)))
    # one baseline per seed (identical within a seed), every (config, gamma) once per seed
    assert sorted(frame[frame["config"] == "odds_1_2-baseline"]["seed"]) == [0, 1, 2]
    assert len(frame) == 3 * (1 + 4 * 2)
    means = seed_means(frame)
    row = means[(means["config"] == "odds_1_2-accept") & (means["gamma"] == 4.0)].iloc[0]
    values = frame[(frame["config"] == "odds_1_2-accept") & (frame["gamma"] == 4.0)]["acceptance_rate"]
    assert row["n_seeds"] == 3 and row["acceptance_rate"] == pytest.approx(values.mean())
    assert row["acceptance_rate_seed_std"] == pytest.approx(0.01)
    report = monotonicity(frame)
    assert report["seeds"] == [0, 1, 2]
    assert all(g["consistent_in_every_seed"] for g in report["groups"].values())
    exp = tmp_path / "exps.json"
    exp.write_text(json.dumps(_exp_show_seeds([2.0, 4.0], [0, 1], lambda s: 0.0)))
    assert main(["--exp-json", str(exp), "--out", str(tmp_path / "sweep.json"), "--plots", str(tmp_path / "p")]) == 0
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert len(saved["runs"]) == 2 * 9 and len(saved["means_over_seeds"]) == 9


def test_a_seed_that_disagrees_is_not_called_robust():
    rows = rows_from_exp_show(_exp_show_seeds([2.0, 4.0, 8.0], [0, 1], lambda s: 0.0))
    for r in rows:  # seed 1: acceptance falls with gamma for the accept variant at odds 1:4 (1/5)
        if r["seed"] == 1 and r["config"] == "odds_1_4-accept":
            r["acceptance_rate"] = 1.0 / r["gamma"]
    groups = monotonicity(sweep_frame(rows))["groups"]
    assert groups["1:4/accept"]["consistent_per_seed"] == {0: True, 1: False}
    assert not groups["1:4/accept"]["consistent_in_every_seed"]
    assert groups["1:2/accept"]["consistent_in_every_seed"]


def test_acceptance_vs_gamma_groups_by_variant_with_the_predicted_log_odds_shift():
    from lmlab.weighted.report import acceptance_vs_gamma_records

    def entry(set_, variant, gamma, rate):
        return {"config": {"set": set_, "variant": variant, "gamma": gamma},
                "metrics": {"acceptance_rate": rate, "accuracy": 0.7, "acceptance_rate_ci_low": rate - 0.1}}

    configs = {"odds_1_2-baseline": entry("odds_1_2", "accept", 1.0, 0.4), "odds_1_2-accept": entry("odds_1_2", "accept", 4.0, 0.6),
               "odds_1_2-reject": entry("odds_1_2", "reject", 4.0, 0.2), "odds_1_8-accept": entry("odds_1_8", "accept", 4.0, 0.3)}
    groups = acceptance_vs_gamma_records(configs, {"odds_1_2": 1 / 3, "odds_1_8": 1 / 9})
    assert sorted(groups) == ["accept", "baseline", "reject"]
    assert [r["config"] for r in groups["accept"]] == ["odds_1_8-accept", "odds_1_2-accept"]  # by gamma, then fraction
    (base,), (rej,) = groups["baseline"], groups["reject"]
    assert math.isclose(base["log_odds_shift"], math.log(0.5)) and base["gamma"] == 1.0
    assert math.isclose(rej["log_odds_shift"], math.log(0.5) - math.log(4.0))
    assert math.isclose(groups["accept"][1]["log_odds_shift"], math.log(0.5) + math.log(4.0))
    assert rej["acceptance_rate_ci_high"] is None and math.isclose(rej["acceptance_rate_ci_low"], 0.1)


def test_write_plot_data_replaces_the_directory_and_keeps_the_test_order(tmp_path):
    from lmlab.weighted.report import write_plot_data

    out = tmp_path / "weighted"
    (out / "roc").mkdir(parents=True)
    (out / "roc" / "removed-config.json").write_text("{}")
    full = {"configs": {"odds_1_2-accept": {"config": {"set": "odds_1_2", "variant": "accept", "gamma": 2.0},
                                            "metrics": {"acceptance_rate": 0.5, "accuracy": 0.75},
                                            "p_accept": [0.9, 0.2, 0.6, 0.4]}}}
    paths = write_plot_data(full, {"odds_1_2": 1 / 3}, [1, 0, 0, 1], out)
    assert sorted(p.relative_to(out).as_posix() for p in paths) == [
        "acceptance_vs_gamma/accept.json", "calibration/odds_1_2-accept.json", "roc/odds_1_2-accept.json"]
    assert not (out / "roc" / "removed-config.json").exists()
    roc = json.loads((out / "roc" / "odds_1_2-accept.json").read_text())["roc"]
    assert [(r["fpr"], r["tpr"]) for r in roc][-1] == (1.0, 1.0) and len(roc) >= 3
