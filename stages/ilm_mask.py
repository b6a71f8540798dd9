"""DVC stage `ilm_mask@<LEVEL>`: hierarchical ILM masking of one level's splits into pickles.

Reads `<splits>/{train,valid,test}.txt` (ILM custom format, written by ilm_split) and
writes `<out>/{train,valid,test}.pkl`: `list[(document, [example, ...])]`, an example being
`[(mask_type, char_offset, char_len), ...]` with plain-int mask types (lmlab.ilm.pickles; read
them with lmlab.ilm.pickles.load_pickle). Sampling parameters, examples per document per split
and the number of worker processes are the `ilm.mask` parameters, plus the top-level `seed`
(lmlab.ilm.masking, lmlab.ilm.masked_splits). Statistics (mask rate, span-type mix, retries, skipped documents) go to a
metrics JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, atomic_write_json, stage_outputs
from lmlab.config import load_params
from lmlab.ilm.masked_splits import mask_level
from lmlab.ilm.params import MaskParams
from lmlab.ilm.punkt import use_nltk_data
from lmlab.stage import stage_main, stage_parser


@stage_main("ilm_mask")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--splits", type=Path, required=True, help="one level's splits dir (data/ilm/splits/A1)")
    parser.add_argument("--nltk-data", type=Path, required=True, help="punkt tables (stage install_punkt)")
    parser.add_argument("--out", type=Path, required=True, help="masked pickles dir to create")
    parser.add_argument("--stats", type=Path, required=True, help="statistics JSON to write")
    args = parser.parse_args(argv)
    params = load_params(MaskParams, args.params, "ilm.mask", top_level=("seed",))
    use_nltk_data(args.nltk_data)
    with stage_outputs([args.out, args.stats]):
        with atomic_dir(args.out) as tmp:
            stats = mask_level(args.splits, tmp, params, nltk_data=args.nltk_data)
        args.stats.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.stats, stats)


if __name__ == "__main__":
    raise SystemExit(main())
