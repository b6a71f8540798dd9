"""DVC stage `wl_eval`: decisions of every `wl_train` model on the fixed balanced test set.

Writes `reports/metrics/weighted.json` (contract: `<config>.{accuracy,precision,recall,f1,
acceptance_rate}` and `gamma`, plus `<config>.gamma` (effective weight), `accept_fraction`,
`upweights_accept`, AUC, Brier, generation metrics), the fuller `reports/weighted/eval.json`
(per-row p_accept, sample generations) and the single-gamma plots.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import build_params, load_params, read_params_file, section_of
from lmlab.weighted.data import read_decisions
from lmlab.weighted.evaluation import evaluate_model_dir
from lmlab.device import limit_cpu_threads
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.params import EvalParams, RuntimeParams, WeightedConfig
from lmlab.weighted.report import plot_by_config

CONTRACT = ("accuracy", "precision", "recall", "f1", "acceptance_rate")
EXTRAS = ("auc", "brier", "gen_acceptance_rate", "gen_accuracy", "gen_unknowns", "agreement")


@stage_main("wl_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True, help="directory holding one model per config")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--eval-json", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="plots directory")
    args = parser.parse_args(argv)
    data = read_params_file(args.params)
    params = load_params(EvalParams, args.params, "weighted.eval")
    limit_cpu_threads(load_params(RuntimeParams, args.params, "weighted.runtime").cpu_threads)
    fractions = section_of(data, "weighted.sets.fractions", args.params)
    configs = {name: build_params(WeightedConfig, raw, key_prefix=f"weighted.configs.{name}", path=args.params)
               for name, raw in section_of(data, "weighted.configs", args.params).items()}
    test = read_decisions(args.test)
    outs = [args.metrics, args.eval_json, args.plots / "weighted_acceptance.png", args.plots / "weighted_accuracy.png"]
    with stage_outputs(outs):
        metrics, full = {"gamma": float(data["gamma"])}, {}
        for name, cfg in configs.items():
            result = evaluate_model_dir(args.models / name, test, params.batch_size, params.max_new_tokens)
            trained = json.loads((args.models / name / "train_summary.json").read_text())
            m = result["metrics"]
            metrics[name] = {**{k: m[k] for k in CONTRACT + EXTRAS}, "gamma": trained["gamma"],
                             "accept_fraction": float(fractions[cfg.fraction]),
                             "upweights_accept": int(cfg.variant == "accept")}
            full[name] = {"config": {"fraction": cfg.fraction, "variant": cfg.variant, **trained},
                          "metrics": m, "p_accept": result["p_accept"], "sample_generations": result["generations"][:8]}
        metrics["gold_acceptance_rate"] = next(iter(full.values()))["metrics"]["gold_acceptance_rate"]
        atomic_write_json(args.metrics, metrics)
        atomic_write_json(args.eval_json, {"ids": result["ids"], "configs": full})
        plot_by_config({k: v["metrics"] for k, v in full.items()}, args.plots, float(data["gamma"]),
                       (params.band_low, params.band_high))


if __name__ == "__main__":
    raise SystemExit(main())
