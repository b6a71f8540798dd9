"""DVC stage `mono_pretrain`: the base LM both monotonic-family arms start from.

Builds `monotonic.model` (a tiny config, or a hub name / local dir such as Pythia) with the
family tokenizer and, when `monotonic.pretrain.enabled`, trains it on the train split with HF
Trainer (DVCLive curves in `--live`). Real pretrained checkpoints set `enabled: false` and are
saved unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.modeling import ModelSpec
from lmlab.monotonic.corpus import SplitParams, read_split
from lmlab.monotonic.params import PretrainParams
from lmlab.monotonic.training import run_pretrain
from lmlab.stage import stage_main, stage_parser


@stage_main("mono_pretrain")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--splits", type=Path, required=True, help="dir with train.jsonl and valid.jsonl")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="model dir to write")
    parser.add_argument("--checkpoints", type=Path, required=True, help="persisted Trainer checkpoint dir")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive dir")
    args = parser.parse_args(argv)
    spec = load_params(ModelSpec, args.params, "monotonic.model")
    data = load_params(SplitParams, args.params, "monotonic.data", top_level=("seed",))
    params = load_params(PretrainParams, args.params, "monotonic.pretrain")
    splits = {name: read_split(args.splits / f"{name}.jsonl") for name in ("train", "valid")}
    resolved = {"model": params_to_dict(spec), "pretrain": params_to_dict(params), "block_size": data.block_size,
                "seed": data.seed}
    with stage_outputs([args.out, args.live]):
        run_pretrain(spec, args.tokenizer, splits, params, data.block_size, data.seed, args.out, args.checkpoints,
                     args.live, resolved,
                     inputs=[args.splits / "train.jsonl", args.splits / "valid.jsonl"])


if __name__ == "__main__":
    raise SystemExit(main())
