"""Weighted-loss sweep report over DVC experiments (a command, not a pipeline stage).

Collects `reports/metrics/weighted.json` of the workspace, its commit and every experiment
(`dvc exp show --json`), or of the given `--metrics` files, and writes acceptance/accuracy vs
gamma, precision-recall, heatmaps and the Spearman monotonicity check. See docs/weighted.md:

    dvc exp run --queue -S gamma=2.0,4.0,8.0 && dvc queue start -j 2   # then, when done:
    python scripts/wl_sweep_report.py
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.report.seeds import exp_show_json
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.report import rows_from_exp_show, rows_from_metrics, sweep_report


@stage_main("wl_sweep_report")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--exp-json", type=Path, help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--metrics", type=Path, nargs="*", default=(), help="weighted.json files instead")
    parser.add_argument("--out", type=Path, default=Path("reports/weighted/sweep.json"))
    parser.add_argument("--plots", type=Path, default=Path("reports/plots"))
    args = parser.parse_args(argv)
    if args.metrics:
        rows = [r for p in args.metrics for r in rows_from_metrics(json.loads(p.read_text()), str(p))]
    else:
        rows = rows_from_exp_show(json.loads(args.exp_json.read_text()) if args.exp_json else exp_show_json())
    sweep_report(rows, args.out, args.plots)


if __name__ == "__main__":
    raise SystemExit(main())
