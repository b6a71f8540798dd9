"""`dvc metrics diff` for reviewers: which changes lie outside the old result's 95% interval.

    python scripts/metrics_diff.py HEAD~1 HEAD      # what a commit did to the metrics
    python scripts/metrics_diff.py main             # main vs the workspace

Reads every `reports/metrics/*.json` at both revisions from git (the metrics files are committed,
`cache: false`), or from the working tree for `workspace` (the default new side), and prints a
Markdown table: a change outside the old 95% interval is an effect to look at; one inside it is
within the test-item noise of the old result. Exits 0 either way (it informs, it does not gate).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmlab.errors import InputError
from lmlab.report.intervals import noise_aware_diff, render_diff
from lmlab.stage import stage_main, stage_parser

METRICS_DIR = "reports/metrics"


def metrics_at(rev: str) -> dict[str, Any]:
    """``{path: parsed JSON}`` of the metrics files at ``rev`` (``workspace``: the working tree)."""
    if rev == "workspace":
        return {str(p): json.loads(p.read_text()) for p in sorted(Path(METRICS_DIR).glob("*.json"))}
    listing = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:{METRICS_DIR}"], capture_output=True,
                             text=True, check=False)
    if listing.returncode != 0:
        raise InputError(f"git cannot list {METRICS_DIR} at {rev}: {listing.stderr.strip()[:200]}")
    out = {}
    for name in listing.stdout.split():
        if name.endswith(".json"):
            path = f"{METRICS_DIR}/{name}"
            text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
            out[path] = json.loads(text)
    return out


@stage_main("metrics_diff")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("old", help="the old revision (e.g. HEAD~1, main)")
    parser.add_argument("new", nargs="?", default="workspace", help="the new revision (default: workspace)")
    args = parser.parse_args(argv)
    print(render_diff(noise_aware_diff(metrics_at(args.old), metrics_at(args.new)), args.old, args.new), end="")


if __name__ == "__main__":
    raise SystemExit(main())
