"""Aggregate seed replicates (DVC experiments) into per-family spread tables and conclusion checks.

    dvc exp run --queue -S seed=0,1,2          # the embedded default for 3 seeds (or name a stage,
    dvc queue start -j 1                        #   e.g. `wl_eval`, to run one family)
    python scripts/seed_table.py                # -> reports/seeds.md, reports/seeds.json

Reads `dvc exp show --json` (or `--exp-json FILE`), keeps one run per seed (experiments first,
then the workspace; `--rev` names the commit they were run from if HEAD has moved since), and writes the mean, std, range and t-interval of every headline across
seeds and, per conclusion of the write-ups, whether every seed agrees on its sign.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, atomic_write_text
from lmlab.errors import InputError
from lmlab.report.seeds import (
    conclusion_agreement,
    exp_show_json,
    headline_spread,
    render_seed_report,
    runs_from_exp_show,
)
from lmlab.report.summary import headline_keys
from lmlab.stage import stage_main, stage_parser


@stage_main("seed_table")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--exp-json", type=Path, help="saved `dvc exp show --json` output (default: run it)")
    parser.add_argument("--rev", help="the commit the seed experiments were run from (default: HEAD)")
    parser.add_argument("--out-md", type=Path, default=Path("reports/seeds.md"))
    parser.add_argument("--out-json", type=Path, default=Path("reports/seeds.json"))
    args = parser.parse_args(argv)
    found = runs_from_exp_show(json.loads(args.exp_json.read_text()) if args.exp_json else exp_show_json(args.rev))
    runs = list({run.seed: run for run in reversed(found) if run.seed is not None}.values())[::-1]
    if len(runs) < 2:
        raise InputError(f"found {len(runs)} run(s) with distinct seeds; seed replicates need at least 2.",
                         hint="queue them first: dvc exp run --queue -S seed=0,1,2 && dvc queue start -j 1")
    spread = headline_spread(runs, headline_keys({run.name: run.metrics for run in runs}))
    agreement = conclusion_agreement(runs)
    atomic_write_text(args.out_md, render_seed_report(runs, spread, agreement))
    atomic_write_json(args.out_json, {"runs": [{"name": r.name, "seed": r.seed} for r in runs],
                                      "headlines": spread, "conclusions": agreement})


if __name__ == "__main__":
    raise SystemExit(main())
