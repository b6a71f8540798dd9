"""DVC stage `wl_sample`: the embedded Accept/Reject sample (training pool + balanced test set).

Writes ShareGPT-like conversation JSONL, deterministically from the top-level `seed` and
`weighted.sample`. Real data in the same format replaces it via `weighted.data.*`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_text, stage_outputs
from lmlab.config import load_params
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.corpus import DecisionSampleParams, make_split


def _jsonl(rows: list[dict]) -> str:
    import json

    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


@stage_main("wl_sample")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--pool", type=Path, required=True, help="output: training pool JSONL")
    parser.add_argument("--test", type=Path, required=True, help="output: balanced test JSONL")
    args = parser.parse_args(argv)
    params = load_params(DecisionSampleParams, args.params, "weighted.sample", top_level=("seed",))
    seed = params.seed
    with stage_outputs([args.pool, args.test]):
        atomic_write_text(args.pool, _jsonl(make_split("pool", params.n_pool, seed, params)))
        atomic_write_text(args.test, _jsonl(make_split("test", params.n_test, seed, params, balanced=True)))


if __name__ == "__main__":
    raise SystemExit(main())
