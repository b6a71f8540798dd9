"""Benchmark: start-up of every stage script (interpreter + module-level imports), this tree vs a baseline rev.

    python bench/bench_startup.py [--baseline REV] [--repeats 3]

For each `stages/<name>.py` it measures the CPU time (user + system) of fresh processes running `python -c "import stages.<name>"` with
`src/` of this tree and of `REV` (default `HEAD~1`; checked out into a temporary git worktree),
alternating the two so machine load hits both alike, and prints medians side by side with the
ratio and which heavy libraries (torch, transformers' Trainer, pandas, nltk) each import pulls in.
The totals weight each script by its number of stage instances in DVC's plan (e.g. ilm_train x 6),
so the last line is the start-up a full `dvc repro` saves. Only module-level imports are timed: a
stage that needs torch still imports it when it computes (see tests/test_stage_imports.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch": "torch", "transformers.trainer": "Trainer", "pandas": "pandas", "nltk": "nltk"}
PROBE = ("import sys, json, importlib; importlib.import_module('stages.' + sys.argv[1]); "
         f"print(json.dumps([label for name, label in {HEAVY!r}.items() if name in sys.modules]))")


def _time_import(tree: Path, script: str) -> tuple[float, list[str]]:
    """CPU seconds (user + system) of a fresh process importing the stage script, and its heavy imports.

    CPU time, not wall time: on a shared machine the wall time of a 1-5 s import swings several-fold
    with the load, its CPU time much less (the wall time is what an idle machine would show).
    """
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", PROBE, script], cwd=tree, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        return float("nan"), ["import failed"]
    return elapsed, json.loads(proc.stdout.strip().splitlines()[-1])


def _instances(tree: Path) -> Counter[str]:
    """Stage instances per script in DVC's plan of the whole pipeline (1 each when DVC cannot tell)."""
    import yaml

    stages = yaml.safe_load((tree / "dvc.yaml").read_text())["stages"]
    script_of = {name: m.group(1) for name, body in stages.items()
                 if (m := re.search(r"stages/(\w+)\.py", str(body.get("do", body)["cmd"])))}
    try:
        sys.path.insert(0, str(ROOT / "src"))
        from lmlab.pipeline_progress import pipeline_plan

        plan = pipeline_plan(tree)
    except Exception:  # noqa: BLE001 - fall back to one instance per dvc.yaml stage
        plan = list(script_of)
    return Counter(script_of[name.split("@")[0]] for name in plan if name.split("@")[0] in script_of)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD~1", help="git rev to compare with (default HEAD~1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scripts = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
    known = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{args.baseline}^{{commit}}"], cwd=ROOT,
                           capture_output=True).returncode == 0
    if not known:  # e.g. a shallow clone: time this tree alone
        print(f"baseline {args.baseline} is not in this clone: no comparison")
    with tempfile.TemporaryDirectory(prefix="lmlab-startup-") as tmp:
        base = Path(tmp) / "base"
        if known:
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            rows = []
            for script in scripts:
                ours, theirs, heavy_ours, heavy_base = [], [], [], []
                for _ in range(args.repeats):  # alternate: load spikes hit both alike
                    if (base / "stages" / f"{script}.py").exists():
                        t, heavy_base = _time_import(base, script)
                        theirs.append(t)
                    t, heavy_ours = _time_import(ROOT, script)
                    ours.append(t)
                rows.append((script, statistics.median(theirs) if theirs else float("nan"), statistics.median(ours),
                             heavy_base, heavy_ours))
            counts = _instances(ROOT)
        finally:
            if known:
                subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    print(f"CPU seconds to import each stage script, median of {args.repeats} fresh processes; baseline {args.baseline}")
    print(f"{'stage script':<16} {'x':>3} {'baseline s':>10} {'now s':>7} {'ratio':>6}  heavy imports (baseline -> now)")
    total_base = total_now = 0.0
    for script, before, now, heavy_base, heavy_now in rows:
        n = counts.get(script, 0)
        ratio = now / before if before == before and before > 0 else float("nan")
        print(f"{script:<16} {n:>3} {before:>10.2f} {now:>7.2f} {ratio:>6.2f}  "
              f"{','.join(heavy_base) or '-'} -> {','.join(heavy_now) or '-'}")
        if before == before:
            total_base += n * before
        total_now += n * now
    print(f"pipeline ({sum(counts.values())} stage instances): module imports {total_base:.0f} s -> {total_now:.0f} s "
          f"(saved {total_base - total_now:.0f} CPU s, ratio {total_now / total_base:.2f})")


if __name__ == "__main__":
    main()
