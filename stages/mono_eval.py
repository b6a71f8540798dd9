"""DVC stage `mono_eval`: test perplexity of the baseline and monotonic models, and before recovery.

Both models score exactly the same tokens of the same test texts (each truncated to
`monotonic.eval.max_length` tokens): summed NLL over the scored tokens, exp of the mean
(see lmlab.monotonic.perplexity). The same tokens are scored for the pretrained base (`--pretrained`)
and for the monotone model right after the constraint, before recovery (the base constrained by
`monotonic.constraint` when `monotonic.arms.monotonic.constrained`, exactly as mono_train starts).
Writes the perplexities (`ppl.{baseline,monotonic,pretrained,monotonic_before_recovery}`), the gap and
its bootstrap CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_params, load_value
from lmlab.modeling import load_model
from lmlab.monotonic.constraint import start_model
from lmlab.monotonic.corpus import read_split
from lmlab.monotonic.params import EvalParams, MonotonicParams
from lmlab.monotonic.robustness import evaluate_perplexity
from lmlab.stage import stage_main, stage_parser


@stage_main("mono_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="baseline model dir")
    parser.add_argument("--monotonic", type=Path, required=True, help="monotonic model dir")
    parser.add_argument("--pretrained", type=Path, required=True, help="pretrained base dir both arms start from")
    parser.add_argument("--test", type=Path, required=True, help="test split JSONL")
    parser.add_argument("--out", type=Path, required=True, help="perplexity JSON to write")
    args = parser.parse_args(argv)
    params = load_params(EvalParams, args.params, "monotonic.eval", top_level=("seed",))
    constraint = load_params(MonotonicParams, args.params, "monotonic.constraint")
    constrained = load_value(args.params, "monotonic.arms.monotonic.constrained", bool)
    with stage_outputs([args.out]):
        before = {"pretrained": lambda: load_model(args.pretrained),
                  "monotonic_before_recovery": lambda: start_model(args.pretrained, constrained, constraint)[0]}
        result = evaluate_perplexity({"baseline": args.baseline, "monotonic": args.monotonic},
                                     read_split(args.test), params, before_recovery=before)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    raise SystemExit(main())
