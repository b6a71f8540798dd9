"""DVC stage `mono_train@<arm>`: recovery training of the baseline or the monotonic arm.

Loads the pretrained base (`--base`), constrains it when `monotonic.arms.<arm>.constrained`
(`monotonic.constraint`: scope, parametrization, init, activation) and trains it with the arm's
`training` settings on the same data, order and seed as the other arm. The monotone model is
saved with plain non-negative weights and a `monotonic.json` marker (see lmlab.monotonic.constraint).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_params, params_to_dict
from lmlab.monotonic.corpus import SplitParams, read_split
from lmlab.monotonic.params import ArmParams, MonotonicParams
from lmlab.monotonic.training import run_arm
from lmlab.stage import stage_main, stage_parser


@stage_main("mono_train")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--arm", required=True, help="arm name under monotonic.arms (baseline, monotonic)")
    parser.add_argument("--base", type=Path, required=True, help="pretrained base model dir")
    parser.add_argument("--splits", type=Path, required=True, help="dir with train.jsonl and valid.jsonl")
    parser.add_argument("--out", type=Path, required=True, help="model dir to write")
    parser.add_argument("--checkpoints", type=Path, required=True, help="persisted Trainer checkpoint dir")
    parser.add_argument("--live", type=Path, required=True, help="DVCLive dir")
    args = parser.parse_args(argv)
    arm = load_params(ArmParams, args.params, f"monotonic.arms.{args.arm}")
    constraint = load_params(MonotonicParams, args.params, "monotonic.constraint")
    data = load_params(SplitParams, args.params, "monotonic.data", top_level=("seed",))
    splits = {name: read_split(args.splits / f"{name}.jsonl") for name in ("train", "valid")}
    resolved = {"arm": args.arm, **params_to_dict(arm), "constraint": params_to_dict(constraint),
                "block_size": data.block_size, "seed": data.seed}
    with stage_outputs([args.out, args.live]):
        run_arm(args.base, arm, constraint, splits, data.block_size, data.seed, args.out, args.checkpoints, args.live,
                resolved, inputs=[args.splits / "train.jsonl", args.splits / "valid.jsonl"])


if __name__ == "__main__":
    raise SystemExit(main())
