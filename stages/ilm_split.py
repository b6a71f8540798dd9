"""DVC stage `ilm_split`: per-CEFR-level train/valid/test splits of a learner corpus CSV.

Reads the CSV named by `ilm.data.csv` (columns, encoding, label strictness and subsample
size are `ilm.data` parameters) and writes `<out>/<LEVEL>/{train,valid,test}.txt` (ILM
custom format) plus `.meta.csv` files for A1 A2 B1 B2 C1 and `all`, and the split
statistics as a metrics JSON (see lmlab.ilm.splitting).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, atomic_write_json, stage_outputs
from lmlab.config import load_params
from lmlab.ilm.params import SplitParams
from lmlab.ilm.splitting import split_corpus
from lmlab.stage import stage_main, stage_parser


@stage_main("ilm_split")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="splits directory to create")
    parser.add_argument("--metrics", type=Path, required=True, help="statistics JSON to write")
    args = parser.parse_args(argv)
    with stage_outputs([args.out, args.metrics]):  # any failure, even a bad parameter, leaves no output
        params = load_params(SplitParams, args.params, "ilm.data", top_level=("seed",))
        with atomic_dir(args.out) as tmp:
            stats = split_corpus(params, tmp)
        atomic_write_json(args.metrics, stats)


if __name__ == "__main__":
    raise SystemExit(main())
