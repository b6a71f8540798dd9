"""Benchmark: `dvc status` and `dvc repro` on an up-to-date repository (target: under 3 s).

Run from the repository root after a complete `dvc repro`:

    python bench/bench_noop.py [--repeats 7] [--no-floor] [--scaling]

Prints the median wall time of each command next to the target. Then, unless `--no-floor`, it
measures side by side (runs alternated, so machine noise hits both alike) a throw-away copy of the
repository whose stages declare no `params:` at all (lock re-committed with `dvc commit -f`, nothing
re-run): the cost of DVC re-parsing `params.yaml` once per parametrised stage, and the floor that
the same stages cannot go below whatever is done to `params.yaml`.

`--scaling` instead times DVC alone on generated toy pipelines of 1 to 46 trivial stages, each
with one dependency, one output and one `params:` key from a copy of this repository's
`params.yaml` (the same file size DVC re-parses per stage), and fits `time = start-up + slope x
stages`: what any pipeline of this shape costs on this machine, independent of lmlab's code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}


def _run(dvc: str, args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([dvc, *args], cwd=cwd, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return elapsed, lines[-1] if lines else ""


def _verdict(median: float) -> str:
    ok = "OK" if median < TARGET_S else "SLOWER THAN TARGET"
    return f"(target < {TARGET_S:.0f} s: {ok}; ratio to target {median / TARGET_S:.2f})"


def _strip_params(dvc_yaml: Path) -> int:
    """Remove every stage's `params:` from a dvc.yaml (round trip); return how many were removed."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.width = 4096
    data = yaml.load(dvc_yaml.read_text())
    removed = 0
    for stage in data["stages"].values():
        body = stage.get("do", stage)
        if body.pop("params", None) is not None:
            removed += 1
    with dvc_yaml.open("w") as fh:
        yaml.dump(data, fh)
    return removed


def _params_free_copy(root: Path, dvc: str, dest: Path) -> int:
    shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(".venv"))
    removed = _strip_params(dest / "dvc.yaml")
    subprocess.run([dvc, "commit", "-f", "-q"], cwd=dest, check=True, env=ENV, capture_output=True)
    return removed


def _toy_pipeline(dest: Path, n_stages: int, params_text: str, dvc: str) -> None:
    """A git+DVC repo with ``n_stages`` trivial parametrised stages, reproduced once."""
    dest.mkdir(parents=True)
    (dest / "params.yaml").write_text(params_text)
    (dest / "input.txt").write_text("x\n")
    lines = ["stages:"]
    for i in range(n_stages):
        lines += [f"  s{i}:", f"    cmd: cp input.txt out{i}.txt", "    deps: [input.txt]",
                  "    params: [seed]", f"    outs: [out{i}.txt]"]
    (dest / "dvc.yaml").write_text("\n".join(lines) + "\n")
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"],
                [dvc, "repro", "-q"]):
        subprocess.run(cmd, cwd=dest, check=True, env=ENV, capture_output=True)


def scaling(root: Path, dvc: str, repeats: int) -> None:
    sizes = (1, 12, 23, 46)
    with tempfile.TemporaryDirectory(prefix="lmlab-noop-scaling-") as tmp:
        repos = {n: Path(tmp) / f"toy{n}" for n in sizes}
        for n, repo in repos.items():
            _toy_pipeline(repo, n, (root / "params.yaml").read_text(), dvc)
        times: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(repeats):  # alternate the sizes so load spikes hit all of them
            for n, repo in repos.items():
                times[n].append(_run(dvc, ["repro"], repo)[0])
    medians = {n: statistics.median(t) for n, t in times.items()}
    slope, intercept = statistics.linear_regression(list(medians), list(medians.values()))
    for n, median in medians.items():
        print(f"toy pipeline, {n:2d} stages: dvc repro median {median:5.2f} s over {repeats} runs")
    print(f"fit: {intercept:.2f} s start-up + {slope * 1000:.0f} ms per parametrised stage; "
          f"{TARGET_S:.0f} s allows at most {max(0, int((TARGET_S - intercept) / slope))} such stages on this machine now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-floor", action="store_true", help="skip the params-free copy")
    parser.add_argument("--scaling", action="store_true", help="time toy pipelines of 1-46 stages instead")
    args = parser.parse_args()
    root = Path.cwd()
    dvc = str(Path(sys.executable).parent / "dvc")
    if args.scaling:
        scaling(root, dvc, args.repeats)
        return
    stages = subprocess.run([dvc, "stage", "list", "--name-only"], capture_output=True, text=True, env=ENV).stdout.split()
    print(f"stages in dvc.yaml: {len(stages)}")
    from ruamel.yaml import YAML

    yaml_parser = YAML(typ="safe").Parser
    c_parser = yaml_parser.__name__ == "CParser"
    print(f"YAML parser used by DVC: {yaml_parser.__module__}.{yaml_parser.__name__} "
          f"({'C extension from ruamel.yaml.clib' if c_parser else 'pure Python: install ruamel.yaml.clib'})")
    for cmd in (["status"], ["repro", "--dry"]):
        times, last = [], ""
        for _ in range(args.repeats):
            elapsed, last = _run(dvc, cmd, root)
            times.append(elapsed)
        median = statistics.median(times)
        print(f"dvc {' '.join(cmd):<12} median {median:5.2f} s over {args.repeats} runs {_verdict(median)} | {last}")
    if args.no_floor:
        times = [_run(dvc, ["repro"], root)[0] for _ in range(args.repeats)]
        median = statistics.median(times)
        print(f"dvc repro        median {median:5.2f} s over {args.repeats} runs {_verdict(median)}")
        return
    with tempfile.TemporaryDirectory(prefix="lmlab-noop-") as tmp:
        copy = Path(tmp) / "repo"
        removed = _params_free_copy(root, dvc, copy)
        ours, floor, last = [], [], ""
        for _ in range(args.repeats):  # alternate: load spikes on this shared machine hit both alike
            elapsed, last = _run(dvc, ["repro"], root)
            ours.append(elapsed)
            floor.append(_run(dvc, ["repro"], copy)[0])
    median, median_floor = statistics.median(ours), statistics.median(floor)
    print(f"dvc repro        median {median:5.2f} s over {args.repeats} runs {_verdict(median)} | {last}")
    print(f"dvc repro, same repository with no stage params ({removed} `params:` lists removed): median "
          f"{median_floor:5.2f} s {_verdict(median_floor)}")
    print(f"ratio: per-stage params cost {median / median_floor:.2f}x; the rest is DVC's own per-stage work "
          f"({median_floor / len(stages) * 1000:.0f} ms/stage incl. start-up)")


if __name__ == "__main__":
    main()
