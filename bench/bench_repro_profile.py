"""Benchmark: where a full embedded `dvc repro` spends its time, per stage, start-up vs work.

Every stage process reports (``lmlab.stage.record_stage_time``) its start-up - from the process
(or its ``torchrun`` launcher) starting to the stage body starting: interpreter, imports,
launcher - and its work; with ``LMLAB_STAGE_TIMES=<file>`` it appends one JSON line there. This
script either runs a full repro from an empty cache in a fresh clone of HEAD and profiles it, or
reads the times file of a repro that already ran (CI writes one):

    python bench/bench_repro_profile.py                  # fresh clone + dvc repro (~15-25 min)
    python bench/bench_repro_profile.py --times FILE     # profile of an earlier repro
    python bench/bench_repro_profile.py --times FILE --wall 1183   # with its measured wall time

Prints the stages sorted by total time, the totals (start-up, work, and the rest of the wall
time: DVC's own hashing, lock and cache work between stages) and the share of each, then the same
per family (the stage name's prefix: ilm, ens, wl, mono, ...). ``--compare OLD_TIMES`` adds a
side-by-side of two repros' work and start-up per family and stage (e.g. before and after a change):

    python bench/bench_repro_profile.py --times NEW.jsonl --compare OLD.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_times(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no stage times (was LMLAB_STAGE_TIMES set for the repro?)")
    return rows


def fresh_repro(workdir: Path) -> tuple[Path, float]:
    """Clone HEAD into ``workdir`` and run `dvc repro` there with stage times on; return (times, wall)."""
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    times = workdir / "stage_times.jsonl"
    env = {**os.environ, "LMLAB_STAGE_TIMES": str(times), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(clone / "src")}
    started = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
    return times, time.perf_counter() - started


def profile(rows: list[dict], wall: float | None) -> str:
    total_startup = sum(r["startup_s"] for r in rows)
    total_work = sum(r["work_s"] for r in rows)
    span = max(r["end"] for r in rows) - min(r["process_start"] for r in rows)
    wall = wall if wall is not None else span
    lines = ["| stage | start-up s | work s | total s | start-up share |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -(r["startup_s"] + r["work_s"])):
        total = r["startup_s"] + r["work_s"]
        lines.append(f"| {r['stage']} | {r['startup_s']:.1f} | {r['work_s']:.1f} | {total:.1f} | "
                     f"{100 * r['startup_s'] / total if total else 0:.0f} % |")
    rest = wall - total_startup - total_work
    lines += ["", f"{len(rows)} stage processes; wall {wall:.0f} s = start-up {total_startup:.0f} s "
                  f"({100 * total_startup / wall:.0f} %) + work {total_work:.0f} s ({100 * total_work / wall:.0f} %) "
                  f"+ between stages (DVC hashing, lock and cache) {rest:.0f} s ({100 * rest / wall:.0f} %)"]
    return "\n".join(lines)


def family(stage: str) -> str:
    """``ilm_train@C1`` -> ``ilm``; a stage without a family prefix is its own family (``report``)."""
    return stage.split("@", 1)[0].split("_", 1)[0]


def _sums(rows: list[dict], key) -> dict[str, tuple[int, float, float]]:
    """``{key(stage): (processes, start-up s, work s)}``."""
    out: dict[str, tuple[int, float, float]] = {}
    for r in rows:
        n, startup, work = out.get(key(r["stage"]), (0, 0.0, 0.0))
        out[key(r["stage"])] = (n + 1, startup + r["startup_s"], work + r["work_s"])
    return out


def by_family(rows: list[dict]) -> str:
    """Start-up and work summed per family, largest first."""
    lines = ["| family | processes | start-up s | work s | total s |", "|---|---|---|---|---|"]
    for name, (n, startup, work) in sorted(_sums(rows, family).items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        lines.append(f"| {name} | {n} | {startup:.1f} | {work:.1f} | {startup + work:.1f} |")
    return "\n".join(lines)


def compare(old: list[dict], new: list[dict]) -> str:
    """Per family, then per stage: start-up and work of two repros side by side (new / old ratio)."""
    def table(title: str, key) -> list[str]:
        a, b = _sums(old, key), _sums(new, key)
        lines = [f"| {title} | start-up old s | start-up new s | work old s | work new s | work new/old |",
                 "|---|---|---|---|---|---|"]
        for name in sorted(set(a) | set(b), key=lambda k: -(a.get(k, (0, 0, 0))[2] + b.get(k, (0, 0, 0))[2])):
            _, s_old, w_old = a.get(name, (0, 0.0, 0.0))
            _, s_new, w_new = b.get(name, (0, 0.0, 0.0))
            ratio = f"{w_new / w_old:.2f}" if w_old else "-"
            lines.append(f"| {name} | {s_old:.1f} | {s_new:.1f} | {w_old:.1f} | {w_new:.1f} | {ratio} |")
        return lines

    total = [sum(r[k] for r in rows) for rows in (old, new) for k in ("startup_s", "work_s")]
    return "\n".join(table("family", family) + [""] + table("stage", lambda s: s) + [
        "", f"start-up {total[0]:.0f} -> {total[2]:.0f} s, work {total[1]:.0f} -> {total[3]:.0f} s "
            f"({len(old)} -> {len(new)} stage processes)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=Path, help="stage times of a repro that already ran (LMLAB_STAGE_TIMES file)")
    parser.add_argument("--wall", type=float, help="that repro's wall time in seconds (default: first start to last end)")
    parser.add_argument("--compare", type=Path, help="stage times of another repro (e.g. before a change) to set beside")
    args = parser.parse_args()
    if args.times:
        rows, wall = read_times(args.times), args.wall
    else:
        with tempfile.TemporaryDirectory(prefix="lmlab-profile-") as tmp:
            times, wall = fresh_repro(Path(tmp))
            rows = read_times(times)
    print(profile(rows, wall) + "\n\n" + by_family(rows))
    if args.compare:
        print("\n" + compare(read_times(args.compare), rows))


if __name__ == "__main__":
    main()
