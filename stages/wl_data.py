"""DVC stage `wl_data`: training sets at each accept:reject odds, same total size, exact proportions.

Reads the decision pool and the test set (`weighted.data.*`), validates every row (a row whose
assistant turn has no parseable decision fails here, before any training) and every
`weighted.configs` entry, then writes `<out>/<set name>.jsonl` (e.g. `odds_1_2.jsonl` = one
Accept for every two Rejects, 1/3 accepted) and `<out>/summary.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import stage_outputs
from lmlab.config import load_mapping, load_params
from lmlab.stage import stage_main, stage_parser
from lmlab.weighted.data import read_decisions, write_sets
from lmlab.weighted.params import SetsParams, WeightedConfig, check_configs


@stage_main("wl_data")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--pool", type=Path, required=True, help="decision JSONL to subsample")
    parser.add_argument("--test", type=Path, required=True, help="fixed test JSONL (validated only)")
    parser.add_argument("--out", type=Path, required=True, help="output directory of the sets")
    args = parser.parse_args(argv)
    params = load_params(SetsParams, args.params, "weighted.sets", top_level=("seed",))
    with stage_outputs([args.out]):
        load_mapping(WeightedConfig, args.params, "weighted.configs", check=lambda c: check_configs(c, params.fractions))
        pool = read_decisions(args.pool)
        read_decisions(args.test)
        write_sets(pool, params, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
