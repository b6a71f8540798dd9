"""Print the plan of a profile before spending GPU time: per training stage, size, memory per GPU, GPU-hours.

  scripts/lab plan                     the embedded default (params.yaml as it is)
  scripts/lab plan weighted            profiles/weighted.yaml applied (A+B: several profiles, B wins)
  scripts/lab plan weighted -S weighted.training.lora.rank=16 -S weighted.training.gradient_checkpointing=true
  scripts/lab plan weighted --only wl_train --processes 8 --gpu-memory 40 --tflops 150 --examples 20000 [--json]

The world size is the launch's (LMLAB_NUM_PROCESSES x LMLAB_NUM_NODES), else the profile's
``profile: processes``, else 1. Exit code 1 when a stage does not fit the stated GPU memory, 2 on a
bad profile. The arithmetic is in lmlab/plan.py's docstring and docs/scaling.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmlab.config import build_params, read_params_file  # noqa: E402
from lmlab.errors import LmlabError, ParamsError  # noqa: E402
from lmlab.launch import LauncherParams  # noqa: E402
from lmlab.plan import format_plan, plan_json, plan_stage, training_stages  # noqa: E402
from lmlab.profiles import apply_overlay, load_profile, overlay_keys  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", nargs="?", help="profile name(s) in profiles/, joined with +")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml")
    parser.add_argument("--processes", type=int, help="GPUs per node (default: LMLAB_NUM_PROCESSES, the profile's, 1)")
    parser.add_argument("--nodes", type=int, help="nodes (default: LMLAB_NUM_NODES or 1)")
    parser.add_argument("--gpu-memory", type=float, default=80.0, help="GB per GPU (default 80)")
    parser.add_argument("--tflops", type=float, default=120.0, help="sustained bf16 TFLOP/s per GPU (default 120)")
    parser.add_argument("--examples", type=int, help="training examples of epoch-based stages")
    parser.add_argument("--only", action="append", default=[], help="stages whose name starts with this (repeatable)")
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param as `dvc exp run -S` would (e.g. weighted.training.lora.rank=16)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        params = read_params_file(args.params)
        processes = None
        for name in (args.profile.split("+") if args.profile else []):
            path = ROOT / "profiles" / f"{name}.yaml"
            overlay, meta = load_profile(path)
            params = apply_overlay(params, overlay_keys(overlay, params, profile_path=path))
            processes = meta.get("processes", processes)
        overrides = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise ParamsError(f"-S {item}: expected KEY=VALUE.")
            *parents, leaf = key.split(".")
            node = overrides
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
        params = apply_overlay(params, overlay_keys(overrides, params, profile_path="-S"))
        per_node = args.processes or int(os.environ.get("LMLAB_NUM_PROCESSES") or processes or 1)
        world = per_node * (args.nodes or int(os.environ.get("LMLAB_NUM_NODES") or 1))
        launcher = build_params(LauncherParams, params.get("launcher") or {}, key_prefix="launcher")
        dvc_yaml = yaml.safe_load(args.dvc_yaml.read_text())
        plans = [plan_stage(stage, launcher, world, train_examples=args.examples, gpu_memory_gb=args.gpu_memory,
                            tflops=args.tflops) for stage in training_stages(dvc_yaml, params)
                 if not args.only or stage.stage.startswith(tuple(args.only))]
    except LmlabError as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    print(plan_json(plans) if args.json else format_plan(plans, args.gpu_memory, args.tflops))
    return 0 if all(p.fits for p in plans) else 1


if __name__ == "__main__":
    sys.exit(main())
