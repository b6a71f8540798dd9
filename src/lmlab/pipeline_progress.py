"""Where a ``dvc repro`` stands: this stage's place in the pipeline and how long the rest took last time.

Why: DVC prints ``Running stage 'X'`` and nothing about how many stages remain; a newcomer's
first ``dvc repro`` of the embedded default runs ~48 stage processes for ~10 minutes. Each stage
logs, when it starts under DVC::

    stage 31 of 48: wl_train@odds_1_2-accept; the 17 stages after it took ~4 min last time (DVC skips unchanged ones)

* **The order** is DVC's own plan for a ``dvc repro`` of the whole pipeline (the post-order walk
  of ``dvc.yaml``'s dependency graph that ``dvc.repo.reproduce.plan_repro`` returns), so the
  positions count up as DVC works through it. DVC skips stages it finds unchanged, so in a
  partial run the number jumps ahead and the estimate is an upper bound; that is said in the line.
  Building the graph costs ~1 s, so the plan is cached in ``.dvc/tmp/lmlab/plan.json``, keyed by
  the text of ``dvc.yaml`` and ``params.yaml`` (``foreach`` lists can come from params): one stage
  per repro pays it.
* **The times** are each stage's last successful wall time (start-up + work), appended by
  :func:`record` to ``.dvc/tmp/lmlab/stage_times.jsonl`` (local, git-ignored by DVC) after every
  stage process; a stage never run here yet counts as unknown and the line says how many are.

Nothing here may fail a stage: every error is logged at debug level and the line is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger("lmlab.stage")

__all__ = ["PROGRESS_DIR", "announce", "append_entry", "describe", "pipeline_plan", "record", "last_times"]

PROGRESS_DIR = Path(".dvc") / "tmp" / "lmlab"
PLAN_FILE = "plan.json"
TIMES_FILE = "stage_times.jsonl"


def _root() -> Path | None:
    """The DVC repository a stage runs in (``DVC_ROOT``, set by DVC for every stage command)."""
    root = os.environ.get("DVC_ROOT")
    return Path(root) if root and os.environ.get("DVC_STAGE") else None


def _plan_key(root: Path) -> str:
    digest = hashlib.sha256()
    for name in ("dvc.yaml", "params.yaml"):
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def pipeline_plan(root: Path) -> list[str]:
    """Every stage instance of the pipeline in the order ``dvc repro`` runs them (cached, see module doc)."""
    cache = root / PROGRESS_DIR / PLAN_FILE
    key = _plan_key(root)
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return list(cached["stages"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    from dvc.repo import Repo
    from dvc.repo.reproduce import get_active_graph, plan_repro

    with Repo(str(root)) as repo:
        stages = [stage.addressing for stage in plan_repro(get_active_graph(repo.index.graph))]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "stages": stages}) + "\n", encoding="utf-8")
    os.replace(tmp, cache)
    return stages


def last_times(path: Path) -> dict[str, float]:
    """``{stage: seconds}`` of each stage's latest successful run recorded in ``path`` (JSON lines)."""
    times: dict[str, float] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return times
    for line in lines:
        try:
            entry = json.loads(line)
            if entry.get("status") == "ok":
                times[str(entry["stage"])] = float(entry["startup_s"]) + float(entry["work_s"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return times


def _duration(seconds: float) -> str:
    return f"~{seconds:.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


def describe(stage: str, plan: Sequence[str], times: Mapping[str, float]) -> str | None:
    """The progress line of ``stage`` given the plan and past times (None: the stage is not in the plan)."""
    if stage not in plan:
        return None
    index = plan.index(stage)
    rest = list(plan[index + 1:])
    head = f"stage {index + 1} of {len(plan)}: {stage}"
    if not rest:
        return f"{head}, the last one"
    known = [times[name] for name in rest if name in times]
    if not known:
        return f"{head}; {len(rest)} stages after it, none timed here yet"
    if len(known) == len(rest):
        return f"{head}; the {len(rest)} stages after it took {_duration(sum(known))} last time (DVC skips unchanged ones)"
    return (f"{head}; {len(rest)} stages after it: {_duration(sum(known))} for the {len(known)} timed here before, "
            f"{len(rest) - len(known)} never run here")


def announce(stage: str) -> None:
    """Log this stage's progress line when it runs under DVC (never raises)."""
    root = _root()
    if root is None:
        return
    try:
        line = describe(stage, pipeline_plan(root), last_times(root / PROGRESS_DIR / TIMES_FILE))
    except Exception as exc:  # a progress line must never fail a stage
        logger.debug("no progress line: %s", exc)
        return
    if line:
        logger.info("%s", line)


def append_entry(path: str | Path, entry: Mapping[str, object]) -> None:
    """Append ``entry`` as one JSON line to ``path`` (one short write: atomic enough for appends)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(entry)) + "\n")


def record(entry: Mapping[str, object]) -> None:
    """Append one stage time (the JSON line of :func:`lmlab.stage.record_stage_time`) to the local history."""
    root = _root()
    if root is None:
        return
    path = root / PROGRESS_DIR / TIMES_FILE
    try:
        append_entry(path, entry)
    except OSError as exc:
        logger.debug("cannot record the stage time in %s: %s", path, exc)
