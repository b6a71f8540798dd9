"""DVC stage `wl_eval`: decisions of every `wl_train` model on the fixed balanced test set.

Writes `reports/metrics/weighted.json` (contract: `<config>.{accuracy,precision,recall,f1,
acceptance_rate}` and `gamma`, plus `<config>.gamma` (effective weight), `accept_fraction`,
`upweights_accept`, AUC, Brier, generation metrics), the fuller `reports/weighted/eval.json`
(per-row p_accept, sample generations) and the single-gamma plots.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_mapping, load_params, load_value
from lmlab.device import limit_cpu_threads
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.data import read_decisions
from lmlab.weighted.evaluation import evaluate_configs
from lmlab.weighted.params import (
    GAMMA_HINT,
    EvalParams,
    RuntimeParams,
    WeightedConfig,
    check_configs,
    check_gamma,
)
from lmlab.weighted.report import plot_by_config


@stage_main("wl_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True, help="directory holding one model per config")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--eval-json", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="plots directory")
    args = parser.parse_args(argv)
    params = load_params(EvalParams, args.params, "weighted.eval")
    limit_cpu_threads(load_params(RuntimeParams, args.params, "weighted.runtime").cpu_threads)
    gamma = load_value(args.params, "gamma", float, check=check_gamma, hint=GAMMA_HINT)
    fractions = load_value(args.params, "weighted.sets.fractions", dict[str, float])
    configs = load_mapping(WeightedConfig, args.params, "weighted.configs", check=lambda c: check_configs(c, fractions))
    test = read_decisions(args.test)
    outs = [args.metrics, args.eval_json, args.plots / "weighted_acceptance.png", args.plots / "weighted_accuracy.png"]
    with stage_outputs(outs):
        metrics, full = evaluate_configs(args.models, configs, fractions, gamma, test, params.batch_size,
                                         params.max_new_tokens)
        atomic_write_json(args.metrics, metrics)
        atomic_write_json(args.eval_json, full)
        plot_by_config({name: c["metrics"] for name, c in full["configs"].items()}, args.plots, gamma,
                       (params.band_low, params.band_high))


if __name__ == "__main__":
    raise SystemExit(main())
