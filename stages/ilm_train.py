"""DVC stages `ilm_train@<LEVEL>` and `ilm_train_transfer@<LEVEL>`: train one infilling LM.

`ilm_train@<LEVEL>` trains from the base model in `ilm.model` for the level's budget
`ilm.budget.<LEVEL>` (steps or epochs; null: `ilm.train.trainer`'s). With `--transfer` the model is
fine-tuned from `--init-from` (the general `all` model) for `ilm.transfer.max_steps`; those stages
exist only for the levels listed in `ilm.transfer.levels` (empty by default).
Run under plain `python` or `torchrun`; only rank 0 writes outputs. A killed run resumes from the
persisted `--checkpoints` dir on the next `dvc repro`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.ilm.params import IlmTrainParams, LevelBudget, TransferParams
from lmlab.ilm.pickles import load_pickle
from lmlab.ilm.sequences import check_masked
from lmlab.ilm.training import apply_budget, apply_transfer, train_ilm
from lmlab.modeling import ModelSpec
from lmlab.stage import is_main_process, stage_main, stage_parser
from lmlab.tokenization import load_tokenizer


@stage_main("ilm_train")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--level", required=True)
    parser.add_argument("--train", type=Path, required=True, help="masked train pickle")
    parser.add_argument("--valid", type=Path, required=True, help="masked valid pickle")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True, help="persisted checkpoint dir (resume)")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive dir")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--transfer", action="store_true", help="fine-tune --init-from (reads ilm.transfer)")
    parser.add_argument("--init-from", type=Path, help="model dir to start from (the general model)")
    args = parser.parse_args(argv)
    outs = [args.out, args.live]
    transfer = load_params(TransferParams, args.params, "ilm.transfer") if args.transfer else None
    if transfer is not None and args.init_from is None:
        parser.error("--transfer needs --init-from")
    spec = load_params(ModelSpec, args.params, "ilm.model")
    params = load_params(IlmTrainParams, args.params, "ilm.train", top_level=("seed",))
    resolved = {"seed": params.seed, "level": args.level, "model": params_to_dict(spec)}
    if transfer is None:  # the transfer variant's length is ilm.transfer's, not the level's budget
        budget = load_params(LevelBudget, args.params, f"ilm.budget.{args.level}")
        params = apply_budget(params, budget)
        resolved.update(train=params_to_dict(params), budget=params_to_dict(budget))
    else:
        resolved["train"] = params_to_dict(params)
        spec, params, resolved = apply_transfer(spec, params, transfer, args.init_from, resolved)
    with stage_outputs(outs if is_main_process() else []):
        train_ilm(
            check_masked(load_pickle(args.train), args.train), check_masked(load_pickle(args.valid), args.valid),
            load_tokenizer(args.tokenizer), spec, params, params.seed, checkpoint_dir=args.checkpoints,
            live_dir=args.live, out_dir=args.out, resolved_params=resolved,
            inputs=[args.train, args.valid, args.tokenizer, *([args.init_from] if args.init_from else [])],
        )


if __name__ == "__main__":
    raise SystemExit(main())
