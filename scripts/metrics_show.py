"""Every declared metric, one per line with its 95% interval: `dvc metrics show` turned on its side.

    python scripts/metrics_show.py                                 # every metrics file of dvc.yaml
    python scripts/metrics_show.py reports/metrics/weighted.json   # one family (any `dvc metrics show` target)

`dvc metrics show` prints one table row per file and one column per key, so a few dozen keys
overflow a terminal. This reads the same data (`dvc metrics show --json`, the workspace) and prints
a block per file: `key  value  [low, high]`, at most ~100 columns wide.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

from lmlab.report.intervals import render_listing


def main(argv: Sequence[str] | None = None) -> int:
    # Not a stage (no lmlab.stage.stage_main): the listing is all it prints, no log lines around it.
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("targets", nargs="*", help="metrics files (default: every one declared in dvc.yaml)")
    args = parser.parse_args(argv)
    proc = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show", "--json", *args.targets], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        print(f"metrics_show: `dvc metrics show --json` failed: {proc.stderr.strip()[:300]}", file=sys.stderr)
        return 2
    # one revision, the workspace: its key is "workspace" or "" depending on the DVC version
    shown = next(iter(json.loads(proc.stdout or "{}").values()), {}).get("data", {})
    files = {path: entry["data"] for path, entry in shown.items() if isinstance(entry.get("data"), dict)}
    for path in sorted(set(shown) - set(files)) or ([] if files else args.targets or ["dvc.yaml"]):
        print(f"metrics_show: no metrics in {path} (not produced yet, or not a metrics file)", file=sys.stderr)
    print(render_listing(files), end="")
    return 0 if files else 2


if __name__ == "__main__":
    raise SystemExit(main())
