"""DVC stage `mono_eval`: test perplexity of the baseline and monotonic models.

Both models score exactly the same tokens of the same test texts (each truncated to
`monotonic.eval.max_length` tokens): summed NLL over the scored tokens, exp of the mean
(see lmlab.monotonic.perplexity). Writes the two perplexities, the gap and its bootstrap CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, stage_outputs
from lmlab.config import load_params
from lmlab.monotonic.corpus import read_split
from lmlab.monotonic.robustness import EvalParams, evaluate_perplexity
from lmlab.stage import stage_main, stage_parser


@stage_main("mono_eval")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--baseline", type=Path, required=True, help="baseline model dir")
    parser.add_argument("--monotonic", type=Path, required=True, help="monotonic model dir")
    parser.add_argument("--test", type=Path, required=True, help="test split JSONL")
    parser.add_argument("--out", type=Path, required=True, help="perplexity JSON to write")
    args = parser.parse_args(argv)
    params = load_params(EvalParams, args.params, "monotonic.eval", top_level=("seed",))
    with stage_outputs([args.out]):
        result = evaluate_perplexity({"baseline": args.baseline, "monotonic": args.monotonic},
                                     read_split(args.test), params)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    raise SystemExit(main())
