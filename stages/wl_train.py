"""DVC stage `wl_train@<config>`: fine-tune one model with the gamma-weighted decision loss.

`weighted.configs.<config>` names the training set (`fraction`), the up-weighted class
(`variant`) and the params key the class weight comes from (`gamma_key`: the top-level `gamma`,
or `weighted.baseline_gamma` for the baseline, which therefore ignores `-S gamma=...`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.config import build_params, key_position, load_params, params_to_dict, read_params_file, section_of
from lmlab.weighted.data import read_decisions
from lmlab.device import limit_cpu_threads
from lmlab.errors import ParamsError
from lmlab.modeling import ModelSpec
from lmlab.stage import stage_main, stage_parser
from lmlab.tokenization import load_tokenizer
from lmlab.training import TrainingParams
from lmlab.weighted.params import LossParams, RuntimeParams, WeightedConfig
from lmlab.weighted.training import train_weighted


def read_gamma(params_path: Path, key: str) -> float:
    """The class weight at dotted `key` of the params file; must be a number > 0."""
    data = read_params_file(params_path)
    parent, _, leaf = key.rpartition(".")
    node = section_of(data, parent, params_path) if parent else data
    if leaf not in node:
        raise ParamsError("the class-weight key named by gamma_key is missing.", path=params_path, key=key)
    value = node[leaf]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        line, column = key_position(node, leaf)
        raise ParamsError(f"gamma must be a number > 0, got {value!r}.", path=params_path, key=key,
                          line=line, column=column, hint="e.g. dvc exp run -S gamma=4.0")
    return float(value)


@stage_main("wl_train")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--config", required=True, help="key of weighted.configs")
    parser.add_argument("--train", type=Path, required=True, help="training set JSONL")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True, help="persisted checkpoint dir (resume)")
    parser.add_argument("--live", type=Path, default=None, help="DVCLive directory")
    args = parser.parse_args(argv)
    raw = section_of(read_params_file(args.params), f"weighted.configs.{args.config}", args.params)
    config = build_params(WeightedConfig, raw, key_prefix=f"weighted.configs.{args.config}", path=args.params)
    gamma = read_gamma(args.params, config.gamma_key)
    loss = load_params(LossParams, args.params, "weighted.loss")
    spec = load_params(ModelSpec, args.params, "weighted.model")
    training = load_params(TrainingParams, args.params, "weighted.training")
    seed = int(read_params_file(args.params)["seed"])
    limit_cpu_threads(load_params(RuntimeParams, args.params, "weighted.runtime").cpu_threads)
    examples = read_decisions(args.train)
    resolved = {"config": args.config, **params_to_dict(config), "gamma": gamma, "loss": params_to_dict(loss),
                "model": params_to_dict(spec), "training": params_to_dict(training), "seed": seed}
    train_weighted(examples, load_tokenizer(args.tokenizer), spec, training, gamma=gamma, variant=config.variant,
                   scope=loss.scope, seed=seed, out_dir=args.out, checkpoint_dir=args.checkpoints,
                   live_dir=args.live, resolved_params=resolved, data_path=args.train)


if __name__ == "__main__":
    raise SystemExit(main())
