"""Logging set-up for stages: one format, tqdm-friendly, stage name in every line."""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

_FORMAT = "%(asctime)s %(levelname)-7s [%(stage)s] %(name)s: %(message)s"


class _TqdmHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` so log lines do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _StageFilter(logging.Filter):
    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def filter(self, record: logging.LogRecord) -> bool:
        record.stage = self.stage
        return True


def setup_logging(stage: str, level: str | int | None = None) -> None:
    """Configure the root logger for a stage (idempotent; ``LMLAB_LOG_LEVEL`` overrides)."""
    level = level or os.environ.get("LMLAB_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_lmlab", False):
            root.removeHandler(handler)
    handler = _TqdmHandler()
    handler._lmlab = True  # type: ignore[attr-defined]
    handler.addFilter(_StageFilter(stage))
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "filelock", "matplotlib", "PIL", "fsspec", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from lmlab.progress import quiet_library_bars

    quiet_library_bars()  # no terminal: no \r bars from datasets/transformers/hub in the log file either


def progress_disabled() -> bool:
    """Progress bars are shown on a terminal and hidden in files (see :func:`lmlab.progress.progress_bars`)."""
    from lmlab.progress import progress_bars

    return not progress_bars()
