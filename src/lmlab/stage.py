"""What every stage's ``main`` shares: argument parsing conventions and error reporting."""

from __future__ import annotations

import argparse
import errno
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence

from lmlab.errors import LmlabError
from lmlab.logs import setup_logging
from lmlab.pipeline_progress import announce, append_entry
from lmlab.pipeline_progress import record as record_progress

__all__ = ["stage_main", "stage_parser", "stage_label", "what_next", "is_main_process",
           "run_single_process_launch_plainly"]

logger = logging.getLogger("lmlab.stage")

EXIT_INPUT_ERROR = 2


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the ``--params`` option every stage takes."""
    parser = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0] if description else None)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def stage_main(name: str, *, after_input_error: str | None = None, progress: bool = True,
               ) -> Callable[[Callable[[Sequence[str] | None], None]], Callable[[Sequence[str] | None], int]]:
    """Decorate a stage body: set up logging, turn :class:`LmlabError` into one paragraph and exit code 2.

    ``after_input_error`` replaces the paragraph's closing advice (default: re-run the stage);
    ``progress=False`` skips the progress line (``check_params``: computing DVC's plan would cost
    more than its own check, and it is always the first stage).
    """

    def decorate(body: Callable[[Sequence[str] | None], None]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(body)
        def main(argv: Sequence[str] | None = None) -> int:
            label = stage_label(name)
            setup_logging(label)
            run_single_process_launch_plainly()
            if progress and is_main_process():
                announce(label)  # "stage 17 of 48: ilm_train@B2; the 31 stages after it took ~6 min last time ..."
            started = time.time()
            status = "crashed"
            try:
                body(argv)
                status = "ok"
            except LmlabError as exc:
                text = str(exc).rstrip()
                logger.error("%s failed: %s%s Then %s.", label, text, "" if text.endswith(".") else ".",
                             after_input_error or rerun_command(label))
                status = "input error"
                return EXIT_INPUT_ERROR
            except Exception as exc:
                logger.error("%s crashed with %s (traceback below). %s", label, type(exc).__name__, what_next(exc, label))
                raise
            finally:
                record_stage_time(label, started, status)
            return 0

        return main

    return decorate


STAGE_TIMES_ENV = "LMLAB_STAGE_TIMES"


def process_start_time() -> float:
    """When this stage's process tree started: the launcher's start under ``torchrun``, else ours.

    ``torchrun``'s parent process spends seconds importing torch before it starts the worker, so
    start-up is counted from the launcher when our parent is one; a warm-started child
    (:mod:`lmlab.warmstart`) counts from its client, the process DVC started.
    """
    from lmlab.warmstart import CLIENT_START_ENV, process_started_at

    if os.environ.get(CLIENT_START_ENV):
        return float(os.environ[CLIENT_START_ENV])
    import psutil

    parent = psutil.Process().parent()
    try:
        if parent is not None and any(launcher in part for part in parent.cmdline()
                                     for launcher in ("torchrun", "torch.distributed.run", "lmlab.launch")):
            return process_started_at(parent.pid)
    except psutil.Error:
        pass
    return process_started_at()


def record_stage_time(label: str, work_started: float, status: str) -> None:
    """Log start-up (interpreter + imports + launcher) and work seconds of this stage's process.

    With ``LMLAB_STAGE_TIMES=<file>`` one JSON line per process is appended there too, which
    ``bench/bench_repro_profile.py`` turns into the per-stage profile of a repro. Rank 0 only.
    """
    if not is_main_process():
        return
    ended = time.time()
    try:
        started = process_start_time()
    except Exception:  # pragma: no cover - a profile must never fail a stage
        started = work_started
    startup, work = max(0.0, work_started - started), ended - work_started
    logger.info("%s %s: %.1f s start-up (interpreter, imports, launcher) + %.1f s work", label, status, startup, work)
    entry = {"stage": label, "status": status, "startup_s": round(startup, 3), "work_s": round(work, 3),
             "process_start": round(started, 3), "end": round(ended, 3)}
    record_progress(entry)  # the local history the next run's progress lines estimate from
    target = os.environ.get(STAGE_TIMES_ENV)
    if target:
        try:
            append_entry(target, entry)
        except OSError as exc:  # a profile must never fail a stage
            logger.warning("cannot append the stage time to %s: %s", target, exc)


def stage_label(name: str) -> str:
    """The DVC stage being run (``DVC_STAGE``, e.g. ``ilm_train@A1``), else ``name``."""
    return os.environ.get("DVC_STAGE") or name


def rerun_command(label: str) -> str:
    """What re-runs the stage: ``dvc repro <stage>`` under DVC, else a plain re-run."""
    return f"re-run `dvc repro {label}`" if os.environ.get("DVC_STAGE") else "re-run the stage"


def what_next(exc: BaseException, label: str) -> str:
    """One sentence telling the user what to do after an unexpected error in stage ``label``."""
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or "out of memory" in text:
        return (f"Out of memory: lower the stage's batch_size (or max_length) in params.yaml, or pick a smaller "
                f"model, then {rerun_command(label)}; training stages resume from their checkpoints dir.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The disk is full: free space (dvc gc -w drops unused cache entries), then {rerun_command(label)}."
    return (f"Not an input error lmlab knows: {rerun_command(label)} to retry (training stages resume from their "
            "checkpoints dir); if it fails again, report it with this log and `dvc params diff`.")


_LAUNCHER_VARIABLES = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                       "GROUP_WORLD_SIZE", "ROLE_WORLD_SIZE", "TORCHELASTIC_RUN_ID")


def run_single_process_launch_plainly() -> None:
    """Under ``torchrun --nproc_per_node=1`` behave like a plain process.

    With ``WORLD_SIZE=1`` the Trainer would still create a process group and wrap the model in
    DDP, which buys nothing and was measured ~8x slower per step on a busy 2-core CPU (40 steps:
    109 s vs 14 s). Several processes keep the normal DDP path.
    """
    import os

    if os.environ.get("WORLD_SIZE") == "1":
        for key in _LAUNCHER_VARIABLES:
            os.environ.pop(key, None)


def is_main_process() -> bool:
    """True on the process that writes outputs (rank 0 under torchrun/accelerate, or a single process)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0
