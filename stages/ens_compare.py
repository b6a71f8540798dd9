"""DVC stage `ens_compare`: every model of `ensemble.models` on the test split, compared.

Writes the per-example report (`--report`), the contract metrics (`--metrics`), two plots
(`--plots-dir`: agreement heatmap, per-class accuracy), the DVC plot data (`--plot-data`: each
model's confusion matrix), the write-up's per-example agreement
table (`--examples-csv`) and write-up 002's numbers beside lmlab's (`--writeup`). Models are read
from `--models-dir/<key>` for every key of `ensemble.models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_mapping, load_params, load_value
from lmlab.ensemble.compare import compare_models
from lmlab.ensemble.data import read_instruction_rows
from lmlab.ensemble.params import CompareParams, SftModelParams
from lmlab.ensemble.report import (
    contract_metrics,
    plot_agreement_matrix,
    plot_class_accuracy,
    write_plot_data,
)
from lmlab.ensemble.string_agreement import write_example_table
from lmlab.ensemble.writeup import WRITEUP, writeup_rows
from lmlab.stage import stage_main, stage_parser
from lmlab.writeup import write_rows

PLOTS = ("ensemble_agreement.png", "ensemble_class_accuracy.png")


@stage_main("ens_compare")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="gold rows to calibrate the judge on")
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots-dir", type=Path, required=True)
    parser.add_argument("--examples-csv", type=Path, required=True, help="the write-up's per-example fields")
    parser.add_argument("--writeup", type=Path, required=True, help="write-up comparison rows (JSON)")
    parser.add_argument("--plot-data", type=Path, default=None, help="directory of DVC plot data (JSON series)")
    args = parser.parse_args(argv)
    params = load_params(CompareParams, args.params, "ensemble.compare")
    seed = load_value(args.params, "seed", int)
    judge = load_value(args.params, "ensemble.judge", Literal["minilm", "none"])
    names = list(load_mapping(SftModelParams, args.params, "ensemble.models", top_level=("seed",)))
    split = load_value(args.params, "ensemble.data.split", Literal["stratified", "writeup"])
    subsample_n = load_value(args.params, "ensemble.data.subsample_n", int)
    test_rows, train_rows = read_instruction_rows(args.test), read_instruction_rows(args.train)
    plots = [args.plots_dir / name for name in PLOTS]
    plot_data = [args.plot_data] if args.plot_data else []
    with stage_outputs([args.report, args.metrics, args.examples_csv, args.writeup, *plots, *plot_data]):
        result = compare_models({n: args.models_dir / n for n in names}, test_rows, train_rows, params, judge, seed)
        summary = result["summary"]
        atomic_write_json(args.report, result)
        atomic_write_json(args.metrics, contract_metrics(summary))
        labels = {m: [r["predictions"][m]["gadget_type"] for r in result["records"]] for m in summary["models"]}
        plot_agreement_matrix(labels, plots[0])
        plot_class_accuracy(summary["per_class_accuracy"], plots[1])
        if args.plot_data:
            write_plot_data(result["records"], summary["models"], args.plot_data)
        write_example_table(args.examples_csv, result["records"], summary["models"])
        rows = writeup_rows(summary, split=split, subsample_n=subsample_n, n_train=len(train_rows))
        write_rows(args.writeup, "ensemble", WRITEUP, rows)


if __name__ == "__main__":
    raise SystemExit(main())
