"""Weighted-loss reports: per-gamma plots for ``wl_eval`` and the sweep report over DVC experiments.

Sweep input is the JSON of ``dvc exp show --json`` (or plain ``weighted.json`` metrics files):
every experiment's ``reports/metrics/weighted.json`` holds, per config, the contract metrics
plus ``gamma`` (the effective class weight: 1 for the baseline), ``accept_fraction`` (of its
training set) and ``upweights_accept`` (1 for the ``accept`` variant). Rows are deduplicated
on (config, gamma, seed), so the baseline - identical in every experiment of one seed - appears
once per seed, and seed replicates (``-S seed=0,1,2``) are all kept: plots and the monotonicity
check use the mean over seeds, and the check also reports whether every seed agrees. The 95%
bootstrap intervals ``<metric>_ci_low/_ci_high`` (accuracy, F1, acceptance rate) are carried
along when present (experiments run before they existed have none) and drawn as error bars.

Theory (spec notes B.3): predicted acceptance on the balanced test set rises with
``delta = log(q / (1 - q)) + log(gamma)`` for ``accept`` and ``... - log(gamma)`` for ``reject``
(q = training accept fraction), so within a (variant, fraction) group Spearman's rho of
acceptance vs gamma should be +1 for ``accept`` and -1 for ``reject``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from lmlab.artifacts import atomic_path  # noqa: E402
from lmlab.weighted.criteria import (  # noqa: E402
    GridPoint,
    criteria_markdown,
    evaluate_criteria,
    odds_label,
    select_grid,
)
from lmlab.weighted.criteria import fraction_label as _fraction_label  # noqa: E402
from lmlab.weighted.criteria import gamma_groups as _groups  # noqa: E402

logger = logging.getLogger(__name__)

METRICS_FILE = "reports/metrics/weighted.json"
COLUMNS = ("accuracy", "precision", "recall", "f1", "acceptance_rate", "gamma", "accept_fraction", "upweights_accept")
CI_COLUMNS = tuple(f"{m}_ci_{side}" for m in ("accuracy", "f1", "acceptance_rate") for side in ("low", "high"))
"""Optional interval columns (written by ``wl_eval`` since the metrics carry 95% CIs)."""
OPTIONAL_COLUMNS = ("gen_unknowns",)
"""Further optional per-config column: ``gen_unknowns`` decides the valid-predictions criterion."""

__all__ = ["rows_from_metrics", "rows_from_exp_show", "sweep_frame", "seed_means", "monotonicity", "plot_by_config", "sweep_report",
           "plot_sweep", "METRICS_FILE", "acceptance_vs_gamma_records", "write_plot_data"]


def rows_from_metrics(metrics: Mapping[str, Any], source: str = "", seed: int | None = None) -> list[dict[str, Any]]:
    """One row per config of a ``weighted.json`` mapping (non-config keys such as ``gamma`` skipped).

    A row holds :data:`COLUMNS` and those of :data:`CI_COLUMNS` the config has (other keys ignored),
    plus the run's ``seed`` (None when unknown, e.g. a bare metrics file).
    """
    rows = []
    for config, values in metrics.items():
        if isinstance(values, Mapping) and all(k in values for k in COLUMNS):
            rows.append({"config": config, "source": source, "seed": seed, **{k: values[k] for k in COLUMNS},
                         **{k: values[k] for k in CI_COLUMNS + OPTIONAL_COLUMNS if k in values},
                         "variant": "accept" if values["upweights_accept"] else "reject"})
    return rows


def rows_from_exp_show(data: Any, metrics_file: str = METRICS_FILE) -> list[dict[str, Any]]:
    """Walk ``dvc exp show --json`` output (workspace, commits, experiments) for weighted metrics."""
    rows: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            payload = node.get("data")
            if isinstance(payload, dict) and isinstance(payload.get("metrics"), dict):
                found = payload["metrics"].get(metrics_file, {}).get("data")
                seed = (((payload.get("params") or {}).get("params.yaml") or {}).get("data") or {}).get("seed")
                if isinstance(found, Mapping):
                    rows.extend(rows_from_metrics(found, str(node.get("name") or node.get("rev") or ""),
                                                  seed if isinstance(seed, int) else None))
            for key in ("experiments", "revs"):
                if node.get(key):
                    walk(node[key])

    walk(data)
    return rows


def sweep_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as a frame, one per (config, gamma, seed), with the theory's ``delta`` per run."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    if "seed" not in frame:
        frame["seed"] = None
    frame["gamma"] = frame["gamma"].astype(float).round(6)
    frame["seed"] = frame["seed"].astype("Int64")
    frame = frame.drop_duplicates(subset=["config", "gamma", "seed"], keep="first").reset_index(drop=True)
    sign = frame["upweights_accept"].map(lambda u: 1.0 if u else -1.0)
    q = frame["accept_fraction"].astype(float)
    frame["delta"] = (q / (1 - q)).map(math.log) + sign * frame["gamma"].map(math.log)
    frame["fraction_label"] = q.map(_fraction_label)
    return frame.sort_values(["accept_fraction", "variant", "gamma"], ascending=[False, True, True])


def seed_means(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (config, gamma): metrics averaged over seeds, with ``n_seeds`` and ``<metric>_seed_std``.

    Interval columns are averaged too (an indication, not an interval of the mean).
    """
    if frame.empty:
        return frame
    metrics = [c for c in ("accuracy", "precision", "recall", "f1", "acceptance_rate", *CI_COLUMNS, *OPTIONAL_COLUMNS)
               if c in frame]
    keys = ["config", "gamma", "accept_fraction", "upweights_accept", "variant", "delta", "fraction_label"]
    grouped = frame.groupby(keys, sort=False, dropna=False)
    means = grouped[metrics].mean().reset_index()
    means["n_seeds"] = grouped.size().to_numpy()
    for metric in ("accuracy", "f1", "acceptance_rate"):
        means[f"{metric}_seed_std"] = grouped[metric].std(ddof=1).to_numpy()
    return means.sort_values(["accept_fraction", "variant", "gamma"], ascending=[False, True, True])


def monotonicity(frame: pd.DataFrame) -> dict[str, Any]:
    """Spearman rho of acceptance vs gamma per (fraction, variant) group, against the predicted sign.

    On the mean over seeds; ``consistent_per_seed`` repeats the check within each seed, so a
    group's direction is called robust only when every seed shows it.
    """
    result = _monotonicity(seed_means(frame))
    seeds = [s for s in frame["seed"].dropna().unique()] if "seed" in frame else []
    if len(seeds) > 1:
        per_seed = {int(s): _monotonicity(frame[frame["seed"] == s])["groups"] for s in sorted(seeds)}
        for name, group in result["groups"].items():
            group["consistent_per_seed"] = {s: groups[name]["consistent"] for s, groups in per_seed.items()
                                            if name in groups}
            group["consistent_in_every_seed"] = bool(group["consistent_per_seed"]) and all(
                group["consistent_per_seed"].values())
    result["seeds"] = [int(s) for s in sorted(seeds)]
    return result


def _monotonicity(frame: pd.DataFrame) -> dict[str, Any]:
    groups = {}
    for q, variant, group in _groups(frame):
        if group["gamma"].nunique() < 2:
            continue
        rho = spearmanr(group["gamma"], group["acceptance_rate"]).statistic
        expected = 1 if variant == "accept" else -1
        groups[f"{odds_label(q)}/{variant}"] = {
            "gammas": group["gamma"].tolist(), "acceptance": group["acceptance_rate"].tolist(),
            "spearman_rho": None if pd.isna(rho) else float(rho), "expected_sign": expected,
            "consistent": bool(not pd.isna(rho) and rho * expected > 0),
        }
    overall = spearmanr(frame["delta"], frame["acceptance_rate"]).statistic if len(frame) > 2 else float("nan")
    return {
        "groups": groups,
        "n_consistent": sum(g["consistent"] for g in groups.values()),
        "n_groups": len(groups),
        "spearman_delta_vs_acceptance": None if pd.isna(overall) else float(overall),
        "acceptance_min": float(frame["acceptance_rate"].min()),
        "acceptance_max": float(frame["acceptance_rate"].max()),
    }


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _yerr(values: Sequence[float], lows: Sequence[Any], highs: Sequence[Any]) -> list[list[float]] | None:
    """Asymmetric error bars ``[[below], [above]]`` from interval bounds; None unless every bound is a number."""
    bounds = list(lows) + list(highs)
    if not bounds or any(b is None or not isinstance(b, (int, float)) or not math.isfinite(b) for b in bounds):
        return None
    return [[max(0.0, v - lo) for v, lo in zip(values, lows)], [max(0.0, hi - v) for v, hi in zip(values, highs)]]


def _config_yerr(metrics: Mapping[str, Mapping[str, Any]], names: Sequence[str], metric: str
                 ) -> list[list[float]] | None:
    return _yerr([metrics[n][metric] for n in names], [metrics[n].get(f"{metric}_ci_low") for n in names],
                 [metrics[n].get(f"{metric}_ci_high") for n in names])


def plot_by_config(metrics: Mapping[str, Mapping[str, Any]], out_dir: str | Path, gamma: float,
                   band: tuple[float, float] = (0.3, 0.7)) -> list[Path]:
    """Single-gamma plots of ``wl_eval``: acceptance rate and accuracy/F1 per config.

    Bars carry 95% CI whiskers when the metrics hold ``<metric>_ci_low/_ci_high`` for every config.
    """
    out_dir = Path(out_dir)
    names = list(metrics)
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names)), 4))
    ax.axhspan(*band, color="green", alpha=0.08, label=f"{band[0]:.0%}-{band[1]:.0%} band")
    acc_err = _config_yerr(metrics, names, "acceptance_rate")
    ax.bar(x, [metrics[n]["acceptance_rate"] for n in names], yerr=acc_err, capsize=3 if acc_err else 0,
           color="tab:blue", label="predicted (scoring)" + (", 95% CI" if acc_err else ""))
    ax.plot(x, [metrics[n].get("gen_acceptance_rate", float("nan")) for n in names], "k^", label="predicted (generation)")
    ax.axhline(next(iter(metrics.values()))["gold_acceptance_rate"], color="red", ls="--", label="gold (test set)")
    ax.set_xticks(list(x), names, rotation=35, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("acceptance rate on the balanced test set")
    ax.set_title(f"Weighted loss: acceptance by config (gamma = {gamma:g}; baseline gamma = 1)")
    ax.legend(fontsize=8)
    paths = [out_dir / "weighted_acceptance.png"]
    _save(fig, paths[0])
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names)), 4))
    width = 0.4
    errs = {metric: _config_yerr(metrics, names, metric) for metric in ("accuracy", "f1")}
    ax.bar([i - width / 2 for i in x], [metrics[n]["accuracy"] for n in names], width, yerr=errs["accuracy"],
           capsize=3 if errs["accuracy"] else 0, label="accuracy")
    ax.bar([i + width / 2 for i in x], [metrics[n]["f1"] for n in names], width, yerr=errs["f1"],
           capsize=3 if errs["f1"] else 0, label="F1 (Accept)")
    ax.set_xticks(list(x), names, rotation=35, ha="right")
    ax.set_ylim(0, 1)
    ci_note = "; whiskers: 95% bootstrap CI" if errs["accuracy"] or errs["f1"] else ""
    ax.set_title(f"Weighted loss: accuracy and F1 by config (gamma = {gamma:g}{ci_note})")
    ax.legend(fontsize=8)
    paths.append(out_dir / "weighted_accuracy.png")
    _save(fig, paths[1])
    return paths


def _lines(frame: pd.DataFrame, metric: str, ylabel: str, band: Sequence[float] | None) -> plt.Figure:
    fractions = sorted(frame["accept_fraction"].unique(), reverse=True)
    fig, axes = plt.subplots(1, len(fractions), figsize=(3.6 * len(fractions), 3.4), sharey=True, squeeze=False)
    for ax, (q, variant, group) in zip([a for a in axes[0] for _ in (0, 1)], _groups(frame)):
        if band is not None and variant == "accept":
            ax.axhspan(band[0], band[1], color="green", alpha=0.08)
            ax.axhline(0.5, color="red", ls="--", lw=0.8)
        if not group.empty:
            color = "tab:blue" if variant == "accept" else "tab:orange"
            err = None
            if f"{metric}_ci_low" in group and f"{metric}_ci_high" in group:
                err = _yerr(group[metric].tolist(), group[f"{metric}_ci_low"].tolist(),
                            group[f"{metric}_ci_high"].tolist())
            if err is None:
                ax.plot(group["gamma"], group[metric], "o-", label=variant, color=color)
            else:
                ax.errorbar(group["gamma"], group[metric], yerr=err, fmt="o-", capsize=3, label=variant, color=color)
        ax.set_xscale("log", base=2)
        ax.set_title(f"odds {odds_label(q)} ({_fraction_label(q)} accepted)")
        ax.set_xlabel("gamma")
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=8)
    return fig


def plot_sweep(frame: pd.DataFrame, out_dir: str | Path, band: tuple[float, float] = (0.3, 0.7)) -> list[Path]:
    """All sweep plots: acceptance/accuracy vs gamma, precision-recall, heatmaps."""
    out_dir = Path(out_dir)
    paths = []
    for metric, label, name in (("acceptance_rate", "predicted acceptance rate", "acceptance_vs_gamma"),
                                ("accuracy", "accuracy", "accuracy_vs_gamma")):
        fig = _lines(frame, metric, label, band if metric == "acceptance_rate" else None)
        paths.append(out_dir / f"weighted_sweep_{name}.png")
        _save(fig, paths[-1])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    markers = dict(zip(sorted(frame["accept_fraction"].unique(), reverse=True), "osD^vP"))
    for _, row in frame.iterrows():
        ax.scatter(row["recall"], row["precision"], marker=markers[row["accept_fraction"]],
                   color="tab:blue" if row["variant"] == "accept" else "tab:orange")
        ax.annotate(f"{row['gamma']:g}", (row["recall"], row["precision"]), fontsize=6)
    for q, m in markers.items():
        ax.scatter([], [], marker=m, color="gray", label=f"fraction {_fraction_label(q)}")
    ax.set_xlabel("recall (Accept)")
    ax.set_ylabel("precision (Accept)")
    ax.set_title("precision vs recall (blue accept, orange reject; labels = gamma)")
    ax.legend(fontsize=7)
    paths.append(out_dir / "weighted_sweep_precision_recall.png")
    _save(fig, paths[-1])
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), squeeze=False)
    for i, variant in enumerate(("accept", "reject")):
        sub = frame[(frame["variant"] == variant) | (frame["gamma"] == 1.0)]
        for j, metric in enumerate(("acceptance_rate", "accuracy", "f1")):
            table = sub.pivot_table(index="fraction_label", columns="gamma", values=metric, aggfunc="first")
            table = table.reindex(sorted(table.index, key=lambda s: -eval_fraction(s)))
            ax = axes[i][j]
            im = ax.imshow(table.values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(table.columns)), [f"{g:g}" for g in table.columns])
            ax.set_yticks(range(len(table.index)), table.index)
            for (r, c), v in pd.DataFrame(table.values).stack().items():
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white")
            ax.set_title(f"{variant}: {metric}")
            ax.set_xlabel("gamma")
            fig.colorbar(im, ax=ax, fraction=0.046)
    paths.append(out_dir / "weighted_sweep_heatmaps.png")
    _save(fig, paths[-1])
    return paths


def eval_fraction(label: str) -> float:
    """``"1/3"`` -> 0.333..., ``"0.4"`` -> 0.4 (labels made by :func:`_fraction_label`)."""
    if "/" in label:
        num, den = label.split("/")
        return float(num) / float(den)
    return float(label)


def sweep_report(rows: Iterable[Mapping[str, Any]], out_json: str | Path, plots_dir: str | Path,
                 band: tuple[float, float] = (0.3, 0.7), points: Sequence[GridPoint] | None = None,
                 min_accuracy: float = 0.6, most_share: float = 0.5) -> dict[str, Any]:
    """Frame + monotonicity check + the write-up's success criteria + all sweep plots.

    With ``points`` (the lab's grid, :func:`lmlab.weighted.criteria.grid_points`) the criteria are
    computed on the grid's runs only (mean over seeds); runs at other (config, gamma) pairs - a
    one-gamma-per-experiment sweep also trains the sets whose grid lacks that gamma - are listed
    as ``runs_outside_grid`` and plotted, never counted. Writes the JSON summary, a CSV of all runs
    and ``<out>_criteria.md`` (pass/fail table with the evidence) beside it.
    """
    from lmlab.artifacts import atomic_write_json, atomic_write_text

    frame = sweep_frame(rows)
    if frame.empty:
        from lmlab.errors import InputError

        raise InputError("no weighted-loss metrics found in the experiments.",
                         hint="run the sweep first (docs/weighted.md), or pass --metrics files.")
    means = seed_means(frame)
    if points is not None:
        grid, outside = select_grid(means, points)
    else:
        grid, outside = means, means.iloc[0:0]
    criteria = evaluate_criteria(grid, band=band, min_accuracy=min_accuracy, most_share=most_share,
                                 points=points) if len(grid) else []
    report = {"runs": frame.drop(columns=["source"]).to_dict(orient="records"),
              "means_over_seeds": means.to_dict(orient="records"), "monotonicity": monotonicity(frame),
              "grid": None if points is None else [asdict(p) for p in points],
              "runs_outside_grid": [f"{r['config']}@gamma={r['gamma']:g}" for _, r in outside.iterrows()],
              "criteria": [c.as_dict() for c in criteria],
              "band": list(band), "plots": [str(p) for p in plot_sweep(means, plots_dir, band)]}
    atomic_write_json(out_json, report)
    atomic_write_text(Path(out_json).with_suffix(".csv"), frame.to_csv(index=False))
    scope = (f"{len(grid)} of the grid's {len(points)} runs" if points is not None else f"all {len(grid)} runs")
    atomic_write_text(Path(out_json).with_name(Path(out_json).stem + "_criteria.md"),
                      f"# Weighted-loss grid: the write-up's success criteria\n\nOn {scope} (mean over seeds "
                      f"{report['monotonicity']['seeds'] or '-'}); runs outside the grid, not counted: "
                      f"{', '.join(report['runs_outside_grid']) or 'none'}.\n\n" + criteria_markdown(criteria))
    mono = report["monotonicity"]
    logger.info("%d runs; monotonic in the predicted direction in %d of %d groups; acceptance %.2f-%.2f",
                len(frame), mono["n_consistent"], mono["n_groups"], mono["acceptance_min"], mono["acceptance_max"])
    logger.info("success criteria on %s:", scope)
    for c in criteria:
        logger.info("  %s  %s: %s", "n/a " if c.passed is None else "PASS" if c.passed else "FAIL", c.writeup, c.summary)
    return report


def acceptance_vs_gamma_records(configs: Mapping[str, Mapping[str, Any]], fractions: Mapping[str, float]
                                ) -> dict[str, list[dict[str, Any]]]:
    """One run's acceptance rate against the effective gamma, split by variant (``baseline`` =
    gamma 1, ``accept``, ``reject``: one DVC series each).

    ``configs`` is ``wl_eval``'s full report per config (``config``: set, variant, trained gamma;
    ``metrics``), ``fractions`` the training accept fraction of each set. A row per config with its
    set, accept fraction, 95% interval, accuracy and the theory's predicted log-odds shift
    ``log(q / (1 - q)) +/- log(gamma)`` (module docstring). ``dvc plots diff`` of experiments at
    other gammas adds their points to the same chart: that is the sweep, drawn by DVC."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, entry in configs.items():
        cfg, m = entry["config"], entry["metrics"]
        q, gamma = float(fractions[cfg["set"]]), float(cfg["gamma"])
        variant = "baseline" if gamma == 1.0 else cfg["variant"]
        sign = 1.0 if cfg["variant"] == "accept" else -1.0
        groups.setdefault(variant, []).append({
            "config": name, "set": cfg["set"], "accept_fraction": q, "gamma": gamma,
            "acceptance_rate": m["acceptance_rate"], "acceptance_rate_ci_low": m.get("acceptance_rate_ci_low"),
            "acceptance_rate_ci_high": m.get("acceptance_rate_ci_high"), "accuracy": m["accuracy"],
            "log_odds_shift": math.log(q / (1.0 - q)) + sign * math.log(gamma)})
    return {variant: sorted(rows, key=lambda r: (r["gamma"], r["accept_fraction"])) for variant, rows in groups.items()}


def write_plot_data(full: Mapping[str, Any], fractions: Mapping[str, float], y_true: Sequence[int],
                    out_dir: str | Path) -> list[Path]:
    """``wl_eval``'s DVC plot data (:mod:`lmlab.plot_data`): per config ``roc/<config>.json`` and
    ``calibration/<config>.json`` of the scoring ``p_accept`` against the gold decisions (the curves
    behind the AUC and Brier score of the metrics), and ``acceptance_vs_gamma/<variant>.json``.
    One directory per chart kind: ``dvc.yaml`` declares the directory, so DVC draws one chart per
    config and a new config needs no edit there. The directory is replaced as a whole
    (atomically), so a removed config leaves no stale file."""
    from lmlab.artifacts import atomic_dir
    from lmlab.plot_data import calibration_records, roc_records, write_plot_file

    written: list[Path] = []
    with atomic_dir(out_dir) as tmp:
        for name, c in full["configs"].items():
            written.append(write_plot_file(tmp / "roc" / f"{name}.json", roc_records(y_true, c["p_accept"])))
            written.append(write_plot_file(tmp / "calibration" / f"{name}.json", calibration_records(y_true, c["p_accept"])))
        for variant, rows in acceptance_vs_gamma_records(full["configs"], fractions).items():
            written.append(write_plot_file(tmp / "acceptance_vs_gamma" / f"{variant}.json", rows))
    return [Path(out_dir) / p.relative_to(tmp) for p in written]
