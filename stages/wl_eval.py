"""DVC stage `wl_eval`: decisions of every `wl_train` model on the fixed balanced test set.

Writes `reports/metrics/weighted.json` (contract: `<config>.{accuracy,precision,recall,f1,
acceptance_rate}`, plus `<config>.gamma` (effective weight; the swept `gamma` is the param), `accept_fraction`,
`upweights_accept`, AUC, Brier, generation metrics), the fuller `reports/weighted/eval.json`
(per-row p_accept, sample generations), the single-gamma plots, the DVC plot data (`--plot-data`:
ROC and calibration curves per config, acceptance vs gamma) and the write-up comparison
`reports/writeup/weighted.json` (write-up 003's numbers and success criteria beside this run's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_mapping, load_params, load_value
from lmlab.device import limit_cpu_threads
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.criteria import grid_points
from lmlab.weighted.data import read_decisions
from lmlab.weighted.evaluation import evaluate_configs
from lmlab.weighted.params import (
    GAMMA_HINT,
    EvalParams,
    GridParams,
    RuntimeParams,
    WeightedConfig,
    check_configs,
    check_gamma,
    check_grid,
    odds_fractions,
)
from lmlab.weighted.report import plot_by_config, write_plot_data
from lmlab.weighted.writeup import WRITEUP, run_criteria, writeup_rows
from lmlab.writeup import write_rows


@stage_main("wl_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True, help="directory holding one model per config")
    parser.add_argument("--sets-summary", type=Path, required=True, help="wl_data's summary.json")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--eval-json", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="plots directory")
    parser.add_argument("--writeup", type=Path, required=True, help="write-up comparison JSON")
    parser.add_argument("--plot-data", type=Path, default=None, help="directory of DVC plot data (JSON series)")
    args = parser.parse_args(argv)
    params = load_params(EvalParams, args.params, "weighted.eval")
    limit_cpu_threads(load_params(RuntimeParams, args.params, "weighted.runtime").cpu_threads)
    gamma = load_value(args.params, "gamma", float, check=check_gamma, hint=GAMMA_HINT)
    odds = load_value(args.params, "weighted.sets.odds", dict[str, tuple[int, int]])
    configs = load_mapping(WeightedConfig, args.params, "weighted.configs", check=lambda c: check_configs(c, odds))
    grid = load_value(args.params, "weighted.grid", GridParams, check=lambda g: check_grid(g, odds))
    test = read_decisions(args.test)
    outs = [args.metrics, args.eval_json, args.plots / "weighted_acceptance.png", args.plots / "weighted_accuracy.png",
            args.writeup] + ([args.plot_data] if args.plot_data else [])
    with stage_outputs(outs):
        metrics, full = evaluate_configs(args.models, configs, odds_fractions(odds), gamma, test, params.batch_size,
                                         params.max_new_tokens)
        atomic_write_json(args.metrics, metrics)
        atomic_write_json(args.eval_json, full)
        plot_by_config({name: c["metrics"] for name, c in full["configs"].items()}, args.plots, gamma,
                       (params.band_low, params.band_high))
        if args.plot_data:
            write_plot_data(full, odds_fractions(odds), [int(e.accept) for e in test], args.plot_data)
        fixed = {name: metrics[name]["gamma"] for name, cfg in configs.items() if cfg.gamma_key != "gamma"}
        points = grid_points(configs, grid, fixed)
        criteria, scope = run_criteria(metrics, points, band=(params.band_low, params.band_high),
                                       min_accuracy=grid.min_accuracy, most_share=grid.most_share, gamma=gamma)
        write_rows(args.writeup, "weighted", WRITEUP,
                   writeup_rows(metrics, json.loads(args.sets_summary.read_text()), criteria, n_grid=len(points),
                                n_test=len(test), scope=scope))


if __name__ == "__main__":
    raise SystemExit(main())
