"""DVC stages `ilm_train@<LEVEL>` and `ilm_train_transfer@<LEVEL>`: train one infilling LM.

`ilm_train@<LEVEL>` trains from the base model in `ilm.model`. With `--transfer` the model is
fine-tuned from `--init-from` (the general `all` model) for `ilm.transfer.max_steps`; those stages
exist only for the levels listed in `ilm.transfer.levels` (empty by default).
Run under plain `python` or `torchrun`; only rank 0 writes outputs. A killed run resumes from the
persisted `--checkpoints` dir on the next `dvc repro`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.ilm.splitting import LEVELS
from lmlab.stage import is_main_process, stage_main, stage_parser


@dataclasses.dataclass(frozen=True)
class TransferParams:
    """`ilm.transfer`: specialised models fine-tuned from the general (`all`) model."""

    levels: tuple[str, ...] = ()  # read by dvc.yaml (which stages exist); checked here
    max_steps: int = 150
    lr: float | None = None  # None: ilm.train.trainer.lr

    def __post_init__(self) -> None:
        unknown = [level for level in self.levels if level not in LEVELS]
        if unknown or len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels: a list of distinct levels among {list(LEVELS)}, got {list(self.levels)}")
        if self.max_steps <= 0:
            raise ValueError(f"max_steps: must be positive, got {self.max_steps}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")


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

    from lmlab.ilm.sequences import check_masked
    from lmlab.ilm.training import IlmTrainParams, train_ilm
    from lmlab.modeling import ModelSpec
    from lmlab.ilm.pickles import load_pickle
    from lmlab.tokenization import load_tokenizer

    spec = load_params(ModelSpec, args.params, "ilm.model")
    params = load_params(IlmTrainParams, args.params, "ilm.train", top_level=("seed",))
    resolved = {"seed": params.seed, "level": args.level, "model": params_to_dict(spec),
                "train": params_to_dict(params)}
    if transfer is not None:
        spec = dataclasses.replace(spec, name=str(args.init_from))
        trainer = dataclasses.replace(params.trainer, max_steps=transfer.max_steps,
                                      lr=transfer.lr or params.trainer.lr)
        params = dataclasses.replace(params, trainer=trainer)
        resolved.update(transfer={"max_steps": transfer.max_steps, "lr": transfer.lr}, init_from=str(args.init_from),
                        train=params_to_dict(params))
    with stage_outputs(outs if is_main_process() else []):
        train_ilm(
            check_masked(load_pickle(args.train), args.train), check_masked(load_pickle(args.valid), args.valid),
            load_tokenizer(args.tokenizer), spec, params, params.seed, checkpoint_dir=args.checkpoints, live_dir=args.live, out_dir=args.out,
            resolved_params=resolved,
            fingerprint_files=[args.train, args.valid, args.tokenizer, *([args.init_from] if args.init_from else [])],
        )


if __name__ == "__main__":
    raise SystemExit(main())
