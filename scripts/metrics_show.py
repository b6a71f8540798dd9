"""Every declared metric, one per line with its 95% interval: `dvc metrics show` turned on its side.

    python scripts/metrics_show.py                                 # every metrics file of dvc.yaml
    python scripts/metrics_show.py reports/metrics/weighted.json   # one family (any `dvc metrics show` target)

`dvc metrics show` prints one table row per file and one column per key, so a few dozen keys
overflow a terminal. This reads the same data (`dvc metrics show --json`, the workspace) and prints
a block per file: `key  value  [low, high]`, at most ~100 columns wide.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

from lmlab.errors import InputError
from lmlab.report.intervals import render_listing
from lmlab.stage import stage_main, stage_parser


@stage_main("metrics_show")
def main(argv: Sequence[str] | None = None) -> None:
    parser = stage_parser(__doc__)
    parser.add_argument("targets", nargs="*", help="metrics files (default: every one declared in dvc.yaml)")
    args = parser.parse_args(argv)
    proc = subprocess.run(["dvc", "metrics", "show", "--json", *args.targets], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise InputError(f"`dvc metrics show --json` failed: {proc.stderr.strip()[:300]}")
    # one revision, the workspace: its key is "workspace" or "" depending on the DVC version
    shown = next(iter(json.loads(proc.stdout or "{}").values()), {}).get("data", {})
    files = {path: entry["data"] for path, entry in shown.items() if isinstance(entry.get("data"), dict)}
    print(render_listing(files), end="")


if __name__ == "__main__":
    raise SystemExit(main())
