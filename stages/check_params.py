"""DVC stage `check_params`: every stage's strict params loader on the whole params.yaml, before any stage runs.

The pipeline's first data stages depend on `--out`, so DVC runs this stage first whenever
params.yaml changed (e.g. `dvc exp run -S gamma=abc`) and stops the run on a bad value: exit
code 2, one paragraph naming params.yaml:line:column, in about a second, with no model imported
and no other stage's outputs deleted. `--out` is a constant, persistent text file: when the
check passes it is rewritten identically, so the stages after it never re-run because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_text
from lmlab.params_check import check_params_file, stage_loader_calls
from lmlab.stage import stage_main, stage_parser

logger = logging.getLogger("lmlab.stage")
CONSTANT = "params.yaml passed every stage's strict params loader (stages/check_params.py).\n"


@stage_main("check_params", after_input_error="re-run your command; nothing else ran and no output was deleted (after a "
            "failed `dvc exp run -S`, `git checkout params.yaml` restores the committed params)", progress=False)
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--stages", type=Path, default=Path("stages"), help="the stage scripts to read loads from")
    parser.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"), help="the commands that run them")
    parser.add_argument("--out", type=Path, required=True, help="constant marker file, written when the check passes")
    args = parser.parse_args(argv)
    loads = check_params_file(Path(args.params), stage_loader_calls(args.stages, args.dvc_yaml))
    if not args.out.exists() or args.out.read_text(encoding="utf-8") != CONSTANT:
        atomic_write_text(args.out, CONSTANT)
    logger.info("%s: %d section loads of the stage scripts type-check", args.params, loads)


if __name__ == "__main__":
    raise SystemExit(main())
