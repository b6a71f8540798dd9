"""Pinned CPU numerics: the same inputs give the same bytes on any x86-64 CPU with AVX2.

Why this exists: with default settings the weights a CPU training run produces depend on the
machine, not only on git. Measured on this project's tiny GPT-2, GPT-NeoX and T5 runs under ten
emulated machines (AMD/Intel, AVX-512/AVX2, 1 or 2 cores), 5-8 distinct final state dicts came
out of one seed; three independent sources of machine dependence had to be closed:

* ATen picks its vectorised kernels by instruction set at first dispatch
  (``ATEN_CPU_CAPABILITY``; AVX-512 and AVX2 kernels sum in different orders);
* MKL's sgemm picks a code branch by CPU vendor and family and blocks by cache size. Its
  conditional numerical reproducibility mode ``MKL_CBWR=COMPATIBLE`` is the only branch MKL
  honours on both AMD and Intel CPUs (``MKL_CBWR=AVX2`` is silently ignored on AMD);
* oneDNN (exact GELU, some convolutions) dispatches by ISA too (``ONEDNN_MAX_CPU_ISA``);
* the intra-op thread count changes how reductions are split, so it is fixed here
  (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``), not left to the number of cores.

All of these are environment variables that torch, MKL and oneDNN read once, at their first
use, so :func:`pin_environment` runs when ``lmlab`` is imported (every stage imports it before
any tensor operation) and :func:`check_pin` confirms in the running process that the pin took.
``torch.use_deterministic_algorithms`` and inter-op threads were measured and are not needed on
CPU; on CUDA the pin adds the documented deterministic switches (cuBLAS workspace, cuDNN).

The price is speed (mostly MKL's compatible branch: ~1.7x on tiny training steps, 2.2-2.5x on
larger forward+backward passes, see ``bench/bench_numerics.py``). ``LMLAB_FAST_NUMERICS=1``
turns the pin off for exploratory runs; results are then valid but machine-specific.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "FAST_NUMERICS_ENV",
    "NUM_THREADS_ENV",
    "DEFAULT_THREADS",
    "PinState",
    "fast_numerics_requested",
    "pinned_environment",
    "pin_environment",
    "check_pin",
    "deterministic_cuda",
]

FAST_NUMERICS_ENV = "LMLAB_FAST_NUMERICS"
NUM_THREADS_ENV = "LMLAB_NUM_THREADS"
DEFAULT_THREADS = 2
"""Intra-op threads of a pinned process: the 2 cores of the lab's CI and laptops. More cores do not
change results under the pin, only this number does (it is part of what the committed lock means)."""

_overridden_at_import: dict[str, str] = {}
_before_pin: dict[str, str | None] = {}
"""What ``import lmlab`` found in ``os.environ`` for each pinned name (None: unset): the environment
:mod:`lmlab.warmstart` hands on to a stage, so the stage's own ``import lmlab`` pins (and reports) it."""
_MKL_BRANCH_COMPATIBLE = 3  # mkl_serv_cbwr_get(MKL_CBWR_BRANCH): 1 OFF, 2 AUTO, 3 COMPATIBLE, 10 AVX2...
_X86_64 = {"x86_64", "amd64"}


def fast_numerics_requested(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when the user asked for machine-specific fast kernels (``LMLAB_FAST_NUMERICS=1``)."""
    environ = os.environ if environ is None else environ
    return environ.get(FAST_NUMERICS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pinned_threads(environ: MutableMapping[str, str] | None = None) -> int:
    """Threads per process: ``LMLAB_NUM_THREADS`` or 2, shared by the processes of one node.

    Under ``torchrun``/``accelerate`` with several local processes each gets an equal share (at
    least one), so a multi-process CPU run does not oversubscribe the cores.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get(NUM_THREADS_ENV, str(DEFAULT_THREADS))
    try:
        threads = int(raw)
    except ValueError:
        raise ValueError(f"{NUM_THREADS_ENV}={raw!r}: expected a positive integer") from None
    if threads < 1:
        raise ValueError(f"{NUM_THREADS_ENV}={raw!r}: expected a positive integer")
    local_world = int(environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, threads // max(1, local_world))


def pinned_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables the pin sets (empty when ``LMLAB_FAST_NUMERICS=1``)."""
    environ = os.environ if environ is None else environ
    if fast_numerics_requested(environ):
        return {}
    threads = str(pinned_threads(environ))
    return {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        # read when the first CUDA context is created; harmless without CUDA
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }


def environment_before_pin() -> dict[str, str]:
    """``os.environ`` as it was before ``import lmlab`` pinned it (for a process that starts a stage)."""
    environ = dict(os.environ)
    for name, previous in _before_pin.items():
        if previous is None:
            environ.pop(name, None)
        else:
            environ[name] = previous
    return environ


def pin_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the pinned variables in ``environ`` (default ``os.environ``); return what was overridden.

    Runs at ``import lmlab``, before logging is configured, so it only returns the overridden
    values (``{name: previous value}``); :func:`check_pin` logs them.
    """
    environ = os.environ if environ is None else environ
    overridden = {}
    for name, value in pinned_environment(environ).items():
        previous = environ.get(name)
        if environ is os.environ:
            _before_pin.setdefault(name, previous)
        if previous is not None and previous != value:
            overridden[name] = previous
        environ[name] = value
    if environ is os.environ:
        _overridden_at_import.update(overridden)
    return overridden


@dataclass(frozen=True)
class PinState:
    """What is in force in this process (logged by every stage that computes with torch)."""

    pinned: bool
    cpu_capability: str
    threads: int
    mkl_branch: int | None

    def describe(self) -> str:
        mkl = {None: "unknown", 1: "OFF", 2: "AUTO", 3: "COMPATIBLE"}.get(self.mkl_branch, str(self.mkl_branch))
        mode = "pinned" if self.pinned else f"fast ({FAST_NUMERICS_ENV}=1, machine-specific)"
        return f"numerics {mode}: ATen {self.cpu_capability}, MKL branch {mkl}, {self.threads} threads"


def _mkl_branch() -> int | None:
    """MKL's conditional-numerical-reproducibility branch in force, or None when unknowable.

    MKL is linked statically into the x86-64 torch wheel and exports its service API; a tiny
    matmul first makes sure MKL has read ``MKL_CBWR``.
    """
    import torch

    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        handle = ctypes.CDLL(str(library))
        getter = handle.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    torch.ones(2, 2) @ torch.ones(2, 2)
    getter.restype = ctypes.c_int
    return int(getter(ctypes.c_int(1)))


@functools.cache
def check_pin() -> PinState:
    """Confirm the pin is in force in this process; raise if torch ran before it was set.

    Called where a stage starts computing (device selection), once per process. It also fixes
    the torch thread count, in case torch's pool was created before the environment was pinned
    (a later explicit ``cpu_threads`` param still wins: it is machine-independent too).
    """
    import torch

    pinned = not fast_numerics_requested()
    if pinned:
        torch.set_num_threads(pinned_threads())
    state = PinState(pinned, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),
                     _mkl_branch() if platform.machine().lower() in _X86_64 else None)
    if pinned and platform.machine().lower() in _X86_64:
        problems = []
        if state.cpu_capability in {"AVX512", "AVX512_BF16", "AVX512_VNNI", "AMX"}:
            problems.append(f"ATen uses {state.cpu_capability} kernels, not AVX2")
        if state.mkl_branch not in (None, _MKL_BRANCH_COMPATIBLE):
            problems.append(f"MKL branch {state.mkl_branch} is not COMPATIBLE (3)")
        if problems:
            raise RuntimeError(
                "the numerics pin is not in force (" + "; ".join(problems) + "): torch computed before "
                "`import lmlab` set ATEN_CPU_CAPABILITY/MKL_CBWR; import lmlab first, or set "
                f"{FAST_NUMERICS_ENV}=1 to run with machine-specific numerics")
        if state.cpu_capability == "DEFAULT":
            logger.warning("this CPU has no AVX2: results are reproducible on this machine only")
    logger.info(state.describe())
    for name, previous in sorted(_overridden_at_import.items()):
        logger.info("numerics pin: %s=%s replaced your %s=%s (set %s=1 to keep yours)", name, os.environ.get(name),
                    name, previous, FAST_NUMERICS_ENV)
    return state


def deterministic_cuda() -> None:
    """The documented CUDA determinism switches (cuDNN without autotuning, deterministic kernels).

    Only under the pin; ``warn_only`` keeps ops without a deterministic CUDA kernel running.
    """
    import torch

    if fast_numerics_requested() or not torch.cuda.is_available():
        return
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
