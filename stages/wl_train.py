"""DVC stage `wl_train@<config>`: fine-tune one model with the gamma-weighted decision loss.

`weighted.configs.<config>` names the training set (`set`, a key of `weighted.sets.odds`), the up-weighted class
(`variant`) and the params key the class weight comes from (`gamma_key`: the top-level `gamma`,
or `weighted.baseline_gamma` for the baseline, which therefore ignores `-S gamma=...`).
With `--eval` (the balanced test set) it logs `eval/decision_nll` every `eval_steps`: the unweighted
NLL of the decision token, comparable across gammas (watched only, never used to select).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, load_value, params_to_dict
from lmlab.device import limit_cpu_threads
from lmlab.modeling import ModelSpec
from lmlab.stage import is_main_process, stage_main, stage_parser
from lmlab.tokenization import load_tokenizer
from lmlab.training_params import TrainingParams
from lmlab.weighted.data import read_decisions
from lmlab.weighted.params import (
    GAMMA_HINT,
    LossParams,
    PromptParams,
    RuntimeParams,
    WeightedConfig,
    check_gamma,
)
from lmlab.weighted.training import train_weighted


@stage_main("wl_train")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--config", required=True, help="key of weighted.configs")
    parser.add_argument("--train", type=Path, required=True, help="training set JSONL")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True, help="persisted checkpoint dir (resume)")
    parser.add_argument("--live", type=Path, default=None, help="DVCLive directory")
    parser.add_argument("--eval", type=Path, default=None, help="decision JSONL for the eval/decision_nll curve")
    args = parser.parse_args(argv)
    config = load_params(WeightedConfig, args.params, f"weighted.configs.{args.config}")
    gamma = load_value(args.params, config.gamma_key, float, check=check_gamma, hint=GAMMA_HINT)
    loss = load_params(LossParams, args.params, "weighted.loss")
    prompt = load_params(PromptParams, args.params, "weighted.prompt")
    spec = load_params(ModelSpec, args.params, "weighted.model")
    training = load_params(TrainingParams, args.params, "weighted.training")
    seed = load_value(args.params, "seed", int)
    limit_cpu_threads(load_params(RuntimeParams, args.params, "weighted.runtime").cpu_threads)
    outputs = [p for p in (args.out, args.live) if p is not None] if is_main_process() else []
    with stage_outputs(outputs):
        examples = read_decisions(args.train)
        eval_examples = read_decisions(args.eval) if args.eval else ()
        resolved = {"config": args.config, **params_to_dict(config), "gamma": gamma, "loss": params_to_dict(loss),
                    "model": params_to_dict(spec), "training": params_to_dict(training), "seed": seed}
        train_weighted(examples, load_tokenizer(args.tokenizer), spec, training, gamma=gamma, variant=config.variant,
                       scope=loss.scope, seed=seed, out_dir=args.out, checkpoint_dir=args.checkpoints,
                       live_dir=args.live, resolved_params=resolved,
                       inputs=[args.train, args.tokenizer] + ([args.eval] if args.eval else []),
                       data_path=args.train, chat_template=prompt.chat_template, eval_examples=eval_examples,
                       eval_path=args.eval)


if __name__ == "__main__":
    raise SystemExit(main())
