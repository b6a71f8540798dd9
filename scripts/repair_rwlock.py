"""Set aside DVC's stage lock table if a killed DVC left it half-written.

    python scripts/repair_rwlock.py [--root DIR]

``dvc repro`` records the outputs its running stages read and write in ``.dvc/tmp/rwlock``, a
small JSON file it rewrites in place (truncate, then write) when a stage starts and ends, also when
the stage's command dies. A DVC process SIGKILLed inside that write (a node failure, an OOM killer,
``kill -9`` of a job whose trainer just died) leaves the file empty or cut short, and
``dvc status``, ``dvc repro`` and ``dvc exp run`` in the repository all stop with ``Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON
structure is corrupted`` until somebody removes it. The table only lists live processes (DVC drops
the entries of dead PIDs itself), so nothing is lost by starting a new one.

This script re-reads the file a few times (a live DVC rewrites it in well under a millisecond,
under its own guard file), and if it is still not JSON, renames it to ``rwlock.corrupt`` (kept for
inspection) and says so. A valid or missing file is left alone. ``scripts/lab`` runs it before
every command, so ``scripts/lab repro`` after a crash just resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("repair_rwlock")

RWLOCK = Path(".dvc/tmp/rwlock")


def is_corrupt(path: Path) -> bool:
    """True if ``path`` exists and does not hold a JSON object (missing files are fine)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except UnicodeDecodeError:
        return True
    try:
        return not isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return True


def repair_rwlock(root: Path, attempts: int = 3, pause: float = 0.2) -> Path | None:
    """Move a corrupt ``root/.dvc/tmp/rwlock`` aside; return where it went, or None if it was fine."""
    path = root / RWLOCK
    for attempt in range(attempts):
        if not is_corrupt(path):
            return None
        if attempt + 1 < attempts:
            time.sleep(pause)
    size = path.stat().st_size
    aside = path.with_name("rwlock.corrupt")
    path.replace(aside)
    log.warning("%s was not a JSON object (%d bytes): a DVC process was killed while writing it. "
                "Moved it to %s; DVC starts a new one (it only lists running DVC processes).",
                RWLOCK, size, aside.relative_to(root))
    return aside


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: cwd)")
    args = parser.parse_args(argv)
    logging.basicConfig(format="lab: %(message)s", level=logging.INFO, stream=sys.stderr)
    repair_rwlock(args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
