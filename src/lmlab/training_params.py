"""``TrainingParams``: the optimisation settings every training stage reads, without torch.

Kept apart from :mod:`lmlab.training` (which subclasses the Trainer and so imports torch and
transformers) so that the params check (``stages/check_params.py``) can validate every section
of ``params.yaml`` in a fraction of a second, before any stage imports a model (issue 17).
:mod:`lmlab.training` re-exports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["TrainingParams", "LoraParams"]

# A memory switch left at its default is not written to params.json (lmlab.config.params_to_dict), so
# the model dirs of runs that do not use it keep the bytes they had before the switch existed.
_OMIT_IF_DEFAULT = {"omit_if_default": True}


@dataclass(frozen=True)
class LoraParams:
    """LoRA settings of a training section (``rank: 0`` = off: the whole model is trained)."""

    rank: int = 0
    alpha: float | None = None  # scaling numerator; None: 2 x rank (scale 2)
    dropout: float = 0.0
    targets: tuple[str, ...] = ()  # module names; empty: every linear projection ("all-linear")
    save: Literal["merged", "adapter"] = "merged"

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"rank: must be >= 0 (0 = LoRA off), got {self.rank}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha: must be > 0 or null (null: 2 x rank), got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: must be in [0, 1), got {self.dropout}")

    @property
    def enabled(self) -> bool:
        return self.rank > 0


@dataclass(frozen=True)
class TrainingParams:
    """Optimisation settings shared by every training stage (one section per family).

    Training length is ``max_steps`` optimiser steps, or, when ``epochs`` is set, that many passes
    over the training set (the lab's write-ups give some budgets in epochs): the step count is then
    derived from the training set's size by :func:`steps_for_epochs`, and ``max_steps`` is ignored.

    The batch is global: ``batch_size`` (per process) x ``grad_accum`` examples per optimiser step,
    whatever the number of processes the launcher starts (not a param: ``LMLAB_NUM_PROCESSES``, see
    :mod:`lmlab.launch`). With W processes each accumulates ``grad_accum / W`` micro-batches
    (:func:`lmlab.training.accumulation_for`), so the same params train on the same examples per step
    on 1 or 8 GPUs.

    Memory switches (off by default): ``gradient_checkpointing`` recomputes activations in the
    backward pass; ``lora`` trains a LoRA adapter instead of every weight (:mod:`lmlab.adapters`).
    """

    max_steps: int = 200
    epochs: float | None = None
    batch_size: int = 16
    eval_batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_steps: int = 50
    save_steps: int = 50
    logging_steps: int = 10
    save_total_limit: int = 2
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    tensorboard: bool = False
    gradient_checkpointing: bool = field(default=False, metadata=_OMIT_IF_DEFAULT)
    lora: LoraParams = field(default_factory=LoraParams, metadata=_OMIT_IF_DEFAULT)

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "eval_batch_size", "grad_accum", "eval_steps", "save_steps",
                     "logging_steps", "save_total_limit"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.epochs is not None and not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs: must be > 0 or null (null: train for max_steps), got {self.epochs}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm: must be > 0, got {self.max_grad_norm}")
