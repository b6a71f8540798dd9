"""Drop dvc.lock entries of stages that dvc.yaml no longer defines.

    python scripts/prune_lock.py [--check]

DVC rewrites the entry of each stage it runs but never deletes the entry of a stage that left
``dvc.yaml`` (a renamed stage, or an opt-in one such as ``ilm_train_transfer@A1`` after
``ilm.transfer.levels`` went back to ``[]``). Stale entries mislead readers of the lock and slow
every ``dvc status``/``dvc repro``, which parse the whole file twice. With ``--check`` nothing is
written and the exit code is 1 if there is anything to prune (used by the tests).
The file is re-written the way DVC re-writes it after a run (its round-trip YAML), so the kept
entries are byte-identical.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def defined_stages(root: Path) -> set[str]:
    """Names of every stage instance dvc.yaml defines (``foreach``/``matrix`` expanded by DVC)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {stage.name for stage in repo.index.stages if stage.path_in_repo == "dvc.yaml"}


def stale_entries(lock: dict, defined: set[str]) -> list[str]:
    return [name for name in (lock.get("stages") or {}) if name not in defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: cwd)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if entries are stale")
    args = parser.parse_args(argv)
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    lock_path = args.root / "dvc.lock"
    lock = parse_yaml_for_update(lock_path.read_text(encoding="utf-8"), str(lock_path))  # as `dvc repro` does
    stale = stale_entries(lock, defined_stages(args.root))
    if not stale:
        print("dvc.lock: no stale entries")
        return 0
    print(f"dvc.lock: {len(stale)} entr{'y' if len(stale) == 1 else 'ies'} for stages not in dvc.yaml: "
          + ", ".join(stale))
    if args.check:
        print("run `python scripts/prune_lock.py` to drop them")
        return 1
    for name in stale:
        del lock["stages"][name]
    tmp = lock_path.with_name(".dvc.lock.prune-tmp")
    tmp.write_text(dumps_yaml(lock), encoding="utf-8")
    tmp.replace(lock_path)
    print("dvc.lock: pruned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
