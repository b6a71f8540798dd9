"""DVC stage `report`: the cross-family summary (Markdown + JSON) with the key plots embedded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from lmlab.artifacts import atomic_write_json, atomic_write_text, stage_outputs
from lmlab.errors import InputError
from lmlab.inputs import read_text_strict
from lmlab.report.summary import FamilyMetrics, build_summary, render_markdown
from lmlab.report.writeup_comparison import WriteupComparison, render_comparison
from lmlab.stage import stage_main, stage_parser


def _family_arg(value: str) -> tuple[str, Path]:
    family, _, path = value.partition("=")
    if not path:
        raise ValueError(f"expected FAMILY=PATH, got {value!r}")
    return family, Path(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(read_text_strict(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}).", path=path, line=exc.lineno, column=exc.colno) from exc


@stage_main("report")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--metrics", type=_family_arg, nargs="+", required=True, help="FAMILY=metrics.json ...")
    parser.add_argument("--plot", type=_family_arg, nargs="*", default=[], help="FAMILY=plot.png ...")
    parser.add_argument("--writeup", type=_family_arg, nargs="*", default=[],
                        help="FAMILY=reports/writeup/FAMILY.json ... (write-up comparison rows)")
    parser.add_argument("--out-md", type=Path, required=True)
    parser.add_argument("--out-json", type=Path, required=True)
    args = parser.parse_args(argv)
    families = [FamilyMetrics(family, str(path), _read_json(path)) for family, path in args.metrics]
    comparison = WriteupComparison.from_payloads({family: (str(path), _read_json(path))
                                                  for family, path in args.writeup})
    plots: dict[str, list[Path]] = {}
    for family, path in args.plot:
        plots.setdefault(family, []).append(path)
    headline, bodies = build_summary(families)
    with stage_outputs([args.out_md, args.out_json]):
        atomic_write_json(args.out_json, {"headline": headline, "sources": {f.family: f.path for f in families},
                                          "writeup": {family: [asdict(row) for row in rows]
                                                      for family, rows in comparison.items()}})
        atomic_write_text(args.out_md, render_markdown(headline, bodies, plots, args.out_md,
                                                       extra_sections=render_comparison(comparison)))


if __name__ == "__main__":
    raise SystemExit(main())
