"""DVC stages `ilm_eval` and `ilm_eval_transfer@<LEVEL>`: perplexity matrix and specialisation gains.

Scores every `--model NAME=DIR` on every `--test LEVEL=PICKLE` (masked test examples) and writes
the metrics (`ppl.<model>.<level>` = infill_textonly perplexity, `specialization_gain.<name>` with
`specialization_gain_ci.<name>.{low,high}` for every `<level>` and `transfer-<level>` model against
`all`), the full report with losses and counts, two plots and, with `--plot-data`, the DVC plot data
(each model's perplexity by test level). `ilm_eval` runs the 6 x 6 matrix;
`ilm_eval_transfer@<LEVEL>` compares the level's transfer, specialised and general models.
A `--model` DIR may also be an ILM trained by the reference's `train_ilm.py` (`pytorch_model.bin`,
`config.json`, `additional_ids_to_tokens.pkl`; tokenizer from `ilm.eval.reference_tokenizer` unless
the dir holds one: `lmlab.ilm.model_dirs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.errors import InputError
from lmlab.ilm.evaluation import (
    evaluate_matrix,
    metrics_from_results,
    plot_matrix,
    specialization_gains,
    write_plot_data,
)
from lmlab.ilm.params import EvalParams
from lmlab.ilm.pickles import load_pickle
from lmlab.ilm.sequences import check_masked
from lmlab.stage import stage_main, stage_parser


def _pairs(values: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--{what} expects NAME=PATH, got '{value}'.")
        out[name] = path
    return out


@stage_main("ilm_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--model", action="append", required=True, help="NAME=DIR (repeat)")
    parser.add_argument("--test", action="append", required=True, help="LEVEL=masked test pickle (repeat)")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--heatmap", type=Path, required=True)
    parser.add_argument("--gain-plot", type=Path, required=True)
    parser.add_argument("--plot-data", type=Path, default=None, help="directory of DVC plot data (JSON series)")
    args = parser.parse_args(argv)
    params = load_params(EvalParams, args.params, "ilm.eval", top_level=("seed",))
    models = _pairs(args.model, "model")
    outs = [args.metrics, args.report, args.heatmap, args.gain_plot] + ([args.plot_data] if args.plot_data else [])
    with stage_outputs(outs):
        tests = {level: check_masked(load_pickle(path), path) for level, path in _pairs(args.test, "test").items()}
        for level, masked in tests.items():
            if not masked:
                raise InputError(f"the test set of level {level} is empty.", path=_pairs(args.test, "test")[level])
        results = evaluate_matrix(models, tests, params)
        levels = list(tests)
        gains = specialization_gains(results, [lvl for lvl in levels if lvl != "all"], params)
        metrics, report = metrics_from_results(results, gains)
        report["params"] = params_to_dict(params)
        report["models"] = models
        atomic_write_json(args.metrics, metrics)
        atomic_write_json(args.report, report)
        plot_matrix(metrics, levels, args.heatmap, args.gain_plot)
        if args.plot_data:
            write_plot_data(results, args.plot_data)


if __name__ == "__main__":
    raise SystemExit(main())
