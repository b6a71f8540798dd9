"""Weighted-loss sweep report over DVC experiments (a command, not a pipeline stage).

Collects `reports/metrics/weighted.json` of the workspace, its commit and every experiment
(`dvc exp show --json`), or of the given `--metrics` files, and writes acceptance/accuracy vs
gamma, precision-recall, heatmaps, the Spearman monotonicity check and the write-up's success
criteria on the lab's grid (`weighted.grid` of `--params`): pass/fail with the evidence, logged
and written to `reports/weighted/sweep_criteria.md`. `scripts/lab sweep` runs the grid and then
this; see docs/weighted.md. By hand:

    dvc exp run --queue -S gamma=2.0,4.0,8.0 wl_eval && dvc queue start -j 2   # then, when done:
    python scripts/wl_sweep_report.py
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lmlab.config import load_mapping, load_params, load_value
from lmlab.report.seeds import exp_show_json
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.criteria import GridPoint, grid_points
from lmlab.weighted.params import (
    EvalParams,
    GridParams,
    WeightedConfig,
    check_configs,
    check_gamma,
    check_grid,
)
from lmlab.weighted.report import rows_from_exp_show, rows_from_metrics, sweep_report


def load_grid(params: Path) -> tuple[list[GridPoint], GridParams, EvalParams]:
    """The grid's runs (configs x their set's gammas, fixed-weight configs once) and the thresholds."""
    odds = load_value(params, "weighted.sets.odds", dict[str, tuple[int, int]])
    configs = load_mapping(WeightedConfig, params, "weighted.configs", check=lambda c: check_configs(c, odds))
    grid = load_value(params, "weighted.grid", GridParams, check=lambda g: check_grid(g, odds))
    fixed = {name: load_value(params, cfg.gamma_key, float, check=check_gamma)
             for name, cfg in configs.items() if cfg.gamma_key != "gamma"}
    return grid_points(configs, grid, fixed), grid, load_params(EvalParams, params, "weighted.eval")


@stage_main("wl_sweep_report")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--exp-json", type=Path, help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--metrics", type=Path, nargs="*", default=(), help="weighted.json files instead")
    parser.add_argument("--out", type=Path, default=Path("reports/weighted/sweep.json"))
    parser.add_argument("--plots", type=Path, default=Path("reports/plots"))
    parser.add_argument("--print-gammas", action="store_true",
                        help="print the grid's distinct swept gammas (comma-separated, for `dvc exp run -S`) and exit")
    args = parser.parse_args(argv)
    points, grid, evaluation = load_grid(args.params)
    if args.print_gammas:
        sys.stdout.write(",".join(repr(float(g)) for g in sorted({p.gamma for p in points if p.swept})) + "\n")
        return
    if args.metrics:
        rows = [r for p in args.metrics for r in rows_from_metrics(json.loads(p.read_text()), str(p))]
    else:
        rows = rows_from_exp_show(json.loads(args.exp_json.read_text()) if args.exp_json else exp_show_json())
    sweep_report(rows, args.out, args.plots, (evaluation.band_low, evaluation.band_high), points=points,
                 min_accuracy=grid.min_accuracy, most_share=grid.most_share)


if __name__ == "__main__":
    raise SystemExit(main())
