"""Progress of long loops: a tqdm bar on a terminal, a log line at a fixed interval in a file.

On a cluster, logs are files (a SLURM ``.out``, ``dvc queue logs``): a ``\\r``-redrawn bar is noise
there, and a loop with its bar switched off is silent for hours. So every long loop of lmlab
(masking, training, evaluation, generation, infilling, attacks) reports through :func:`progress`:

- on a terminal (stderr is a tty), a tqdm bar, as before;
- otherwise, one stdlib ``logging`` line every ``LMLAB_PROGRESS_INTERVAL`` seconds (default 30)
  and one at the end, with count/total, percentage, rate, elapsed time and ETA::

      uat: 24/48 steps (50%), 0.81 steps/s, elapsed 0:00:29, ETA 0:00:29
      uat: done, 48/48 steps in 0:00:58 (0.82 steps/s)

``LMLAB_PROGRESS=1`` forces bars, ``LMLAB_PROGRESS=0`` forces log lines. The HF Trainer gets the
same treatment: :func:`attach_trainer_progress` swaps its print/bar callbacks for
:func:`trainer_progress_callback` when there is no terminal (its own bars are turned off through
``TrainingArguments(disable_tqdm=...)``, see :func:`progress_bars`). Progress reporting only
observes a loop: it never changes what the loop computes.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INTERVAL",
    "LogProgress",
    "attach_trainer_progress",
    "format_duration",
    "progress",
    "progress_bars",
    "progress_interval",
    "quiet_library_bars",
    "trainer_progress_callback",
]

DEFAULT_INTERVAL = 30.0


def progress_bars() -> bool:
    """Bars on a terminal, log lines otherwise (``LMLAB_PROGRESS=1``/``0`` forces bars/log lines)."""
    forced = os.environ.get("LMLAB_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return sys.stderr.isatty()


_LIBRARY_BAR_SWITCHES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def quiet_library_bars() -> None:
    """Without a terminal, also turn off the HF libraries' own tqdm bars.

    ``datasets``' ``Map`` bars, hub downloads and transformers' shard loading/writing bars would
    otherwise put ``\\r`` lines into the log file. The environment switches are set only where the
    user has not set them (so ``HF_HUB_DISABLE_PROGRESS_BARS=0`` keeps them), for this process and
    its children; libraries already imported are switched off through their own API.
    """
    if progress_bars():
        return
    for name in _LIBRARY_BAR_SWITCHES:
        os.environ.setdefault(name, "1")
    if os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1" and "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
        if "huggingface_hub" in sys.modules:
            sys.modules["huggingface_hub"].utils.disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


def progress_interval() -> float:
    """Seconds between two progress log lines (``LMLAB_PROGRESS_INTERVAL``, default 30)."""
    raw = os.environ.get("LMLAB_PROGRESS_INTERVAL", "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        logger.warning("LMLAB_PROGRESS_INTERVAL=%r is not a number; using %g s", raw, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL
    return max(value, 0.0)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (days are counted in hours: a week-long run reads ``168:00:00``)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(max(seconds, 0.0)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _count(value: float) -> str:
    """Counts as integers (``1234567``, never ``1.23457e+06``), fractions as they are."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _rate(count: float, elapsed: float, unit: str) -> str:
    """``12.5 docs/s``, or ``3.02 s/step`` below one per second (slow training steps read better)."""
    if elapsed <= 0 or count <= 0:
        return f"? {unit}/s"
    per_second = count / elapsed
    if per_second >= 1:
        return f"{per_second:.0f} {unit}/s" if per_second >= 100 else f"{per_second:.3g} {unit}/s"
    one = unit[:-2] if unit.endswith(("ches", "shes", "sses")) else unit[:-1] if unit.endswith("s") else unit
    return f"{1 / per_second:.3g} s/{one}"


class LogProgress:
    """tqdm's ``update``/``close``/iteration interface, reporting as log lines at a fixed interval.

    ``start`` is a count already done before this process began (a resumed run): it counts towards
    ``n`` and the percentage but not towards the rate, so the ETA stays honest.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", interval: float | None = None, start: float = 0,
                 log: logging.Logger | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc or "progress"
        self.unit = unit
        self.interval = progress_interval() if interval is None else interval
        self.n = start
        self.start = start
        self.log = log or logger
        self.clock = clock
        self.t0 = self.last = clock()
        self.closed = False

    def __iter__(self) -> Iterator:
        assert self.iterable is not None, "LogProgress without an iterable is updated by hand"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def line(self, now: float | None = None) -> str:
        """The progress line for the current count (``now``: the clock reading to use)."""
        elapsed = (self.clock() if now is None else now) - self.t0
        done = self.n - self.start
        count = f"{_count(self.n)}/{_count(self.total)} {self.unit}" if self.total else f"{_count(self.n)} {self.unit}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = ""
        if self.total:
            eta = (f", ETA {format_duration((self.total - self.n) * elapsed / done)}" if done > 0
                   else ", ETA ?")
        return (f"{self.desc}: {count}{pct}, {_rate(done, elapsed, self.unit)}, "
                f"elapsed {format_duration(elapsed)}{eta}")

    def update(self, n: float = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= self.interval and not self.closed:
            self.last = now
            self.log.info("%s", self.line(now))

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:  # tqdm compatibility; not logged
        return None

    def close(self) -> None:
        """Log the final line once (count, elapsed time, overall rate)."""
        if self.closed:
            return
        self.closed = True
        elapsed = self.clock() - self.t0
        count = f"{_count(self.n)}/{_count(self.total)}" if self.total else _count(self.n)
        self.log.info("%s: done, %s %s in %s (%s)", self.desc, count, self.unit, format_duration(elapsed),
                      _rate(self.n - self.start, elapsed, self.unit))


def progress(iterable: Iterable | None = None, *, desc: str, total: float | None = None, unit: str = "it",
             leave: bool = True, interval: float | None = None) -> Any:
    """A tqdm bar on a terminal, :class:`LogProgress` otherwise (same iteration/update interface).

    ``total`` defaults to ``len(iterable)`` when the iterable has one (pass it for generators, or the
    log lines carry no percentage and no ETA).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if progress_bars():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, interval=interval)


def _format_logs(logs: dict[str, Any]) -> str:
    parts = []
    for key, value in logs.items():
        if key.endswith(("total_flos", "_runtime", "_per_second")) or key == "epoch":
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


class _TrainerProgress:
    """The HF Trainer's progress as log lines: steps/total, rate, ETA every interval; metrics as logged.

    Replaces the Trainer's ``ProgressCallback`` (``\\r`` bars) and ``PrinterCallback`` (``print`` of
    raw dicts) when there is no terminal. Main process only; it reads the state, never changes it.
    Mixed into ``TrainerCallback`` by :func:`trainer_progress_callback`, so that importing this
    module (every masking worker does) does not import transformers.
    """

    def __init__(self, interval: float | None = None, log: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.log = log or logger
        self.clock = clock
        self.bar: LogProgress | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D401 - HF callback signature
        if state.is_world_process_zero:
            self.bar = LogProgress(total=state.max_steps, desc="train", unit="steps", interval=self.interval,
                                   start=state.global_step, log=self.log, clock=self.clock)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            text = _format_logs(logs)
            if text:
                self.log.info("train: step %d/%d %s", state.global_step, state.max_steps, text)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@functools.cache
def _callback_class() -> type:
    from transformers import TrainerCallback

    return type("TrainerProgressCallback", (_TrainerProgress, TrainerCallback), {"__module__": __name__})


def trainer_progress_callback(interval: float | None = None, log: logging.Logger | None = None,
                              clock: Callable[[], float] = time.monotonic) -> Any:
    """A ``TrainerCallback`` logging the Trainer's progress (see :class:`_TrainerProgress`)."""
    return _callback_class()(interval=interval, log=log, clock=clock)


def attach_trainer_progress(trainer: Any) -> None:
    """Without a terminal, swap the Trainer's print/bar callbacks for :func:`trainer_progress_callback`."""
    if progress_bars():
        return
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(trainer_progress_callback())
