"""DVC stage `mono_attack`: UAT and HotFlip on both models, the family's aggregate and plot.

UAT triggers are optimised on the valid split and evaluated on the test split (disjoint);
HotFlip attacks test texts (context flips, target scored). Writes per-example JSONL logs
(trigger, flips, losses), every aggregate (both success definitions, NLLs, counts; `--detail`), the headline
`reports/metrics/monotonic.json` (contract keys with their bootstrap CIs, the write-up's success criteria as pass/fail and whether the attack
reduction is meaningful: it is withheld when the monotone model fails the perplexity criterion),
the perplexity-vs-robustness plot, the write-up comparison rows (`reports/writeup/monotonic.json`)
and, with `--plot-data`, the DVC plot data (clean vs attacked loss of every attacked text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from lmlab.artifacts import atomic_write_json, atomic_write_text, stage_outputs
from lmlab.config import load_params
from lmlab.monotonic.corpus import read_split
from lmlab.monotonic.params import AttackParams
from lmlab.monotonic.robustness import headline_metrics, plot_robustness, run_attacks, write_plot_data
from lmlab.monotonic.writeup import WRITEUP, writeup_rows
from lmlab.stage import stage_main, stage_parser
from lmlab.writeup import write_rows


@stage_main("mono_attack")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--monotonic", type=Path, required=True)
    parser.add_argument("--splits", type=Path, required=True, help="dir with valid.jsonl and test.jsonl")
    parser.add_argument("--perplexity", type=Path, required=True, help="mono_eval's perplexity JSON")
    parser.add_argument("--logs", type=Path, required=True, help="dir for uat.jsonl and hotflip.jsonl")
    parser.add_argument("--metrics", type=Path, required=True, help="headline metrics (dvc metrics)")
    parser.add_argument("--detail", type=Path, required=True, help="every aggregate metric (report JSON)")
    parser.add_argument("--plot", type=Path, required=True)
    parser.add_argument("--writeup", type=Path, required=True, help="write-up comparison rows JSON to write")
    parser.add_argument("--plot-data", type=Path, default=None, help="directory of DVC plot data (JSON series)")
    args = parser.parse_args(argv)
    params = load_params(AttackParams, args.params, "monotonic.attack", top_level=("seed",))
    outputs = [args.logs / "uat.jsonl", args.logs / "hotflip.jsonl", args.metrics, args.detail, args.plot,
               args.writeup]
    outputs += [args.plot_data] if args.plot_data else []
    with stage_outputs(outputs):
        metrics, logs = run_attacks({"baseline": args.baseline, "monotonic": args.monotonic},
                                    read_split(args.splits / "valid.jsonl"), read_split(args.splits / "test.jsonl"),
                                    json.loads(args.perplexity.read_text()), params)
        for name, rows in logs.items():
            atomic_write_text(args.logs / f"{name}.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        atomic_write_json(args.metrics, headline_metrics(metrics))
        atomic_write_json(args.detail, metrics)
        plot_robustness(metrics, args.plot)
        if args.plot_data:
            write_plot_data(logs, args.plot_data)
        write_rows(args.writeup, "monotonic", WRITEUP, writeup_rows(metrics))


if __name__ == "__main__":
    raise SystemExit(main())
