"""DVC stage `ens_train@<model>`: fine-tune one entry of `ensemble.models` on the train split.

Tiny bases use the family's shared BPE (`--tokenizer`); a hub name or local directory keeps
its own tokenizer. Works under plain `python` and under `torchrun` (only rank 0 writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params
from lmlab.device import seed_everything, select_runtime
from lmlab.ensemble.data import read_instruction_rows
from lmlab.ensemble.params import SftModelParams
from lmlab.ensemble.training import train_instruction_model
from lmlab.stage import is_main_process, stage_main, stage_parser
from lmlab.tokenization import load_tokenizer


@stage_main("ens_train")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--model", required=True, help="key under ensemble.models")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True, help="shared BPE dir (tiny bases only)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoints", type=Path, required=True)
    parser.add_argument("--live", type=Path, required=True, help="DVCLive directory")
    args = parser.parse_args(argv)
    params = load_params(SftModelParams, args.params, f"ensemble.models.{args.model}", top_level=("seed",))
    seed_everything(params.seed)
    runtime = select_runtime(params.training.device, params.training.precision)
    tokenizer = load_tokenizer(args.tokenizer if params.model.tiny else params.model.name)
    train_rows, valid_rows = read_instruction_rows(args.train), read_instruction_rows(args.valid)
    # the tokenizer (or, for a local base model, its dir) is an input of the run like the data
    base = args.tokenizer if params.model.tiny else Path(params.model.name)
    outputs = [args.out, args.live] if is_main_process() else []
    with stage_outputs(outputs):
        train_instruction_model(
            params, train_rows, valid_rows, tokenizer, runtime, name=args.model,
            inputs=[args.train, args.valid, base], checkpoint_dir=args.checkpoints, live_dir=args.live,
            out_dir=args.out,
        )


if __name__ == "__main__":
    raise SystemExit(main())
