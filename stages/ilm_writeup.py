"""DVC stage `ilm_writeup`: the ILM write-ups' (000, 001) numbers beside lmlab's, for the report.

Reads every level's mask statistics, the split counts, every model's `training_summary.json` and
`params.json` (step-0 and final eval losses, steps, budget), the perplexity matrix and the infill
scores, and writes `reports/writeup/ilm.json` (`lmlab.writeup` rows; not a metrics file). Params:
`ilm.model.name` and `ilm.data.csv` only decide the rows' notes and which corpus sizes are
"n/a at embedded scale".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmlab.artifacts import stage_outputs
from lmlab.config import load_value
from lmlab.errors import InputError
from lmlab.ilm.writeup import EMBEDDED_CSV, WRITEUP, ilm_writeup_rows
from lmlab.stage import stage_main, stage_parser
from lmlab.writeup import write_rows


def _pairs(values: Sequence[str], what: str) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--{what} expects LEVEL=PATH, got '{value}'.")
        out[name] = Path(path)
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("file not found.", path=path, hint="run the stage that writes it first.") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}.", path=path, line=exc.lineno, column=exc.colno) from exc


@stage_main("ilm_writeup")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--mask-stats", action="append", required=True, help="LEVEL=mask stats JSON (repeat)")
    parser.add_argument("--model", action="append", required=True, help="LEVEL=model dir (repeat)")
    parser.add_argument("--split", type=Path, required=True, help="ilm_split metrics JSON")
    parser.add_argument("--ppl", type=Path, required=True, help="perplexity matrix metrics (ilm.json)")
    parser.add_argument("--infill", type=Path, required=True, help="infill metrics (ilm_infill.json)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    base_model = load_value(args.params, "ilm.model.name", str)
    csv = load_value(args.params, "ilm.data.csv", str)
    models = _pairs(args.model, "model")
    with stage_outputs([args.out]):
        rows = ilm_writeup_rows(
            mask_stats={level: _read_json(path) for level, path in _pairs(args.mask_stats, "mask-stats").items()},
            split=_read_json(args.split),
            summaries={level: _read_json(path / "training_summary.json") for level, path in models.items()},
            model_params={level: _read_json(path / "params.json") for level, path in models.items()},
            ppl_metrics=_read_json(args.ppl), infill=_read_json(args.infill),
            base_model=base_model, real_data=Path(csv) != Path(EMBEDDED_CSV),
        )
        write_rows(args.out, "ilm", WRITEUP, rows)


if __name__ == "__main__":
    raise SystemExit(main())
