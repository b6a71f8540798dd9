"""Benchmark: `dvc status` and `dvc repro` on an up-to-date repository (target: under 3 s).

Run from the repository root after a complete `dvc repro`:

    python bench/bench_noop.py [--repeats 5]

Prints the median wall time of each command next to the target, and the number of stages, so the
cost of parsing `params.yaml` once per parametrised stage (see shared DVC notes) stays visible.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 3.0


def _time(cmd: list[str], repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
        times.append(time.perf_counter() - start)
        out = (proc.stdout + proc.stderr).strip().splitlines()[-1] if (proc.stdout + proc.stderr).strip() else ""
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dvc = str(Path(sys.executable).parent / "dvc")
    stages = subprocess.run([dvc, "stage", "list", "--name-only"], capture_output=True, text=True).stdout.split()
    print(f"stages in dvc.yaml: {len(stages)}")
    from ruamel.yaml import YAML

    parser = YAML(typ="safe").Parser
    c_parser = parser.__name__ == "CParser"
    print(f"YAML parser used by DVC: {parser.__module__}.{parser.__name__} "
          f"({'C extension from ruamel.yaml.clib' if c_parser else 'pure Python: install ruamel.yaml.clib'})")
    for cmd in (["status"], ["repro", "--dry"], ["repro"]):
        median, last = _time([dvc, *cmd], args.repeats)
        verdict = "OK" if median < TARGET_S else "SLOWER THAN TARGET"
        print(f"dvc {' '.join(cmd):<12} median {median:5.2f} s over {args.repeats} runs "
              f"(target < {TARGET_S:.0f} s: {verdict}; ratio to target {median / TARGET_S:.2f}) | {last}")


if __name__ == "__main__":
    main()
