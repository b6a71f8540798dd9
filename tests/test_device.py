"""Device selection, precision and the CPU thread cap (lmlab.device)."""

from __future__ import annotations

import os

import pytest
import torch

from lmlab.device import Runtime, limit_cpu_threads, select_runtime


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


def test_cpu_runtime_is_fp32_and_forces_cpu_in_trainer_flags() -> None:
    runtime = select_runtime("cpu")
    assert runtime.device.type == "cpu" and runtime.precision == "fp32" and runtime.dtype is torch.float32
    assert runtime.trainer_flags() == {"bf16": False, "fp16": False, "use_cpu": True}


def test_auto_follows_the_lmlab_device_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMLAB_DEVICE", "cpu")
    assert select_runtime("auto").device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        select_runtime("cuda")


def test_limit_cpu_threads_sets_torch_and_openmp(restore_threads) -> None:
    target = 1 if torch.get_num_threads() != 1 else 2
    limit_cpu_threads(target)
    assert torch.get_num_threads() == target
    assert os.environ["OMP_NUM_THREADS"] == str(target)


def test_zero_keeps_the_default_and_negative_is_rejected(restore_threads) -> None:
    before = torch.get_num_threads()
    limit_cpu_threads(0)
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
    with pytest.raises(ValueError, match=">= 0"):
        limit_cpu_threads(-1)


def test_threads_are_left_alone_off_the_cpu(restore_threads) -> None:
    before = torch.get_num_threads()
    gpu = Runtime(device=torch.device("cuda", 0), precision="bf16")
    limit_cpu_threads(before + 1, gpu)
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
