"""Compare the output hashes of dvc.lock stages between a git revision and the workspace.

    python scripts/compare_lock.py [--rev HEAD] [--strict STAGE_PREFIX ...] [--ignore PATH_PREFIX ...]

Prints every stage whose outputs changed. Exits 1 if a changed stage matches one of the
``--strict`` prefixes (e.g. ``ilm_split``, ``wl_``), so CI can assert reproduction for the
stages whose determinism is tested, and report the others. Outputs under an ``--ignore`` prefix
(e.g. ``checkpoints/``: resume state, not results) are not compared.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import yaml


def _outs(lock: dict, ignore: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {
        stage: {o["path"]: o.get("md5") or o.get("hash", "") for o in entry.get("outs", [])
                if not o["path"].startswith(ignore)}
        for stage, entry in (lock.get("stages") or {}).items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--strict", nargs="*", default=[])
    parser.add_argument("--ignore", nargs="*", default=[])
    args = parser.parse_args()
    committed = yaml.safe_load(subprocess.run(["git", "show", f"{args.rev}:dvc.lock"], capture_output=True,
                                              text=True, check=True).stdout)
    with open("dvc.lock") as fh:
        current = yaml.safe_load(fh)
    before, after = _outs(committed, tuple(args.ignore)), _outs(current, tuple(args.ignore))
    failed = False
    for stage in sorted(set(before) | set(after)):
        if before.get(stage) == after.get(stage):
            continue
        strict = any(stage.startswith(p) for p in args.strict)
        failed |= strict
        changed = sorted(p for p in set(before.get(stage, {})) | set(after.get(stage, {}))
                         if before.get(stage, {}).get(p) != after.get(stage, {}).get(p))
        print(f"{'ERROR' if strict else 'note '} {stage}: outputs differ from {args.rev}: {', '.join(changed)}")
    if not failed:
        print(f"compare_lock: every strictly checked stage reproduced the committed outputs of {args.rev}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
