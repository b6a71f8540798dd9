"""DVC stage `ens_split`: validate the instruction JSONL, strip class names, subsample, split.

Writes `train.jsonl`, `valid.jsonl` and `test.jsonl` into `--out-dir` (`ensemble.data.split:
writeup`: `test.jsonl` is the write-up's 10 % validation, which it compares on). Bad input (a line that
is not JSON, a row missing a field, an empty file) stops the stage with the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_dir, stage_outputs
from lmlab.config import load_params
from lmlab.ensemble.data import DataParams, prepare_rows, read_instruction_rows, split_rows
from lmlab.stage import stage_main, stage_parser


@stage_main("ens_split")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--jsonl", type=Path, default=None, help="input JSONL (default: ensemble.data.jsonl)")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params(DataParams, args.params, "ensemble.data", top_level=("seed",))
    source = args.jsonl or Path(params.jsonl)
    rows = prepare_rows(read_instruction_rows(source), params.strip_class_from_instruction)
    splits = split_rows(rows, params)
    with stage_outputs([args.out_dir]), atomic_dir(args.out_dir) as tmp:
        for name, part in splits.items():
            text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in part)
            (tmp / f"{name}.jsonl").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
