"""DVC stage `ens_sample`: the embedded gadget-classification JSONL (deterministic from `seed`).

Real data replaces it by pointing `ensemble.data.jsonl` at another file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_text, stage_outputs
from lmlab.config import load_params
from lmlab.ensemble.corpus import SampleParams, generate_gadget_rows
from lmlab.stage import stage_main, stage_parser


@stage_main("ens_sample")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    args = parser.parse_args(argv)
    params = load_params(SampleParams, args.params, "ensemble.sample", top_level=("seed",))
    rows = generate_gadget_rows(params)
    with stage_outputs([args.out]):
        atomic_write_text(args.out, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))


if __name__ == "__main__":
    raise SystemExit(main())
