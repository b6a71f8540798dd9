"""Benchmark: stage start-up as a fresh interpreter vs forked from the warm server (lmlab.warmstart).

    python bench/bench_warmstart.py [--repeats 3] [STAGE ...]

Run in a repository whose pipeline has run (the stages' deps exist). For each stage it runs
`dvc repro --force --single-item --no-commit STAGE` alternately with `LMLAB_WARM=0` (plain: the
interpreter imports torch, transformers, ... itself) and with the warm server, so machine load hits
both alike, and prints per stage the median start-up (process start to the stage body, from the
stage's own `LMLAB_STAGE_TIMES` record: interpreter, imports, fork), work and DVC wall time, side by
side with the ratio. The warm server is started (and its imports paid) before the first warm run,
as the first stage of a `dvc repro` does in the background. Outputs are rewritten with the same
bytes and not committed to the cache; a training stage resumes from its finished checkpoint, so its
work column is short.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_STAGES = ["check_params", "ilm_split", "ilm_mask@A1", "wl_tokenizer", "ilm_eval", "ens_compare",
                  "wl_train@odds_1_2-baseline", "wl_eval", "mono_eval", "mono_attack"]


def _run(stage: str, warm: bool, times: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    run_env = dict(env, LMLAB_WARM="1" if warm else "0", LMLAB_STAGE_TIMES=str(times))
    times.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(["dvc", "repro", "--force", "--single-item", "--no-commit", stage], env=run_env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"dvc repro {stage} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    entries = [json.loads(line) for line in times.read_text().splitlines() if line.strip()]
    return wall, {"startup": sum(e["startup_s"] for e in entries), "work": sum(e["work_s"] for e in entries)}


def _start_server(env: dict[str, str]) -> None:
    """Start the server as a `dvc repro` does (its first stage spawns it) and wait until it listens.

    Through DVC, not by calling the client here: DVC hands its stages a slightly different
    environment (it undoes pyenv's PATH changes, for one), and the server is keyed by it.
    """
    from lmlab.warmstart import socket_dir

    directory = socket_dir(env)
    subprocess.run(["dvc", "repro", "--force", "--single-item", "--no-commit", "check_params"], env=env,
                   check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while True:
        if list(directory.glob("*.sock")) and not list(directory.glob("*.starting")):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm server did not come up in {directory}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", default=DEFAULT_STAGES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 repeat of 3 stages")
    args = parser.parse_args(argv)
    stages, repeats = (args.stages[:3], 1) if args.quick else (args.stages, args.repeats)
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1")
    env.pop("LMLAB_WARM", None)
    _start_server(env)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        times = Path(tmp) / "times.jsonl"
        for stage in stages:
            runs: dict[bool, list[tuple[float, dict[str, float]]]] = {False: [], True: []}
            for _ in range(repeats):
                for warm in (False, True):
                    runs[warm].append(_run(stage, warm, times, env))
            med = {warm: {"wall": statistics.median(r[0] for r in rs),
                          "startup": statistics.median(r[1]["startup"] for r in rs),
                          "work": statistics.median(r[1]["work"] for r in rs)} for warm, rs in runs.items()}
            rows.append((stage, med[False], med[True]))
            print(f"{stage}: start-up {med[False]['startup']:.2f} -> {med[True]['startup']:.2f} s", file=sys.stderr)
    print(f"medians of {repeats}, plain (LMLAB_WARM=0) vs warm, alternating\n")
    print("| stage | start-up plain s | start-up warm s | ratio | work plain s | work warm s "
          "| dvc repro wall plain s | wall warm s |")
    print("|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0]
    for stage, plain, warm in rows:
        totals[0] += plain["startup"]
        totals[1] += warm["startup"]
        ratio = warm["startup"] / plain["startup"] if plain["startup"] else float("nan")
        print(f"| {stage} | {plain['startup']:.2f} | {warm['startup']:.2f} | {ratio:.2f}x | {plain['work']:.2f} "
              f"| {warm['work']:.2f} | {plain['wall']:.2f} | {warm['wall']:.2f} |")
    print(f"\nstart-up over these {len(rows)} stages: {totals[0]:.1f} s plain vs {totals[1]:.1f} s warm "
          f"({totals[1] / totals[0]:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
