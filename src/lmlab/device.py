"""Device and precision selection: CUDA with bf16 where supported, else CPU in fp32."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from lmlab.numerics import check_pin, deterministic_cuda

logger = logging.getLogger(__name__)

DeviceChoice = Literal["auto", "cpu", "cuda", "mps"]
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: Literal["fp32", "bf16", "fp16"]

    @property
    def dtype(self) -> torch.dtype:
        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]

    def trainer_flags(self) -> dict[str, bool]:
        """Keyword arguments for ``TrainingArguments`` (mixed precision and CPU forcing)."""
        return {
            "bf16": self.precision == "bf16",
            "fp16": self.precision == "fp16",
            "use_cpu": self.device.type == "cpu",
        }


def select_runtime(device: DeviceChoice = "auto", precision: PrecisionChoice = "auto") -> Runtime:
    """Pick the device (``LMLAB_DEVICE`` overrides ``auto``) and a precision it supports."""
    if device == "auto":
        device = os.environ.get("LMLAB_DEVICE", "auto")  # type: ignore[assignment]
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but CUDA is not available")
    if precision == "auto":
        if device == "cuda" and torch.cuda.is_bf16_supported():
            precision = "bf16"
        else:
            precision = "fp32"
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        dev = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    else:
        dev = torch.device(device)
    runtime = Runtime(device=dev, precision=precision)  # type: ignore[arg-type]
    logger.info("device %s, precision %s", runtime.device, runtime.precision)
    check_pin()
    if runtime.device.type == "cuda":
        deterministic_cuda()
    return runtime


def limit_cpu_threads(n: int, runtime: Runtime | None = None) -> None:
    """Cap torch's intra-op CPU threads at ``n`` (``0`` keeps torch's default; no-op off the CPU).

    Tiny models gain nothing from intra-op parallelism, and on a shared CPU extra threads
    spin-wait for descheduled peers: one thread was ~8x faster for generation on the busy
    2-core development machine. ``OMP_NUM_THREADS`` is set too, because accelerate (under
    torchrun on CPU) resets the thread count to the number of physical cores otherwise.
    """
    if n < 0:
        raise ValueError(f"cpu threads must be >= 0, got {n}")
    if n == 0 or (runtime is not None and runtime.device.type != "cpu"):
        return
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    logger.info("torch CPU threads: %d", n)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
