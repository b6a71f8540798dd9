"""The monotonic family's params sections that need no torch: constraint, training arms, evaluation, attacks.

Kept apart from the modules that use them (which import torch and transformers) so that the
params check (``stages/check_params.py``) validates them in a fraction of a second, before any
stage imports a model (issue 17); those modules re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lmlab.training_params import TrainingParams

__all__ = ["MonotonicParams", "PretrainParams", "ArmParams", "EvalParams", "AttackParams", "UATParams",
           "HotFlipParams", "Scope", "Parametrization", "Init", "Activation"]

Scope = Literal["mlp_both", "mlp_in", "mlp_in_attn_out"]
Parametrization = Literal["softplus", "abs", "exp"]
Init = Literal["abs", "clamp"]
Activation = Literal["keep", "mono_gelu"]


@dataclass(frozen=True)
class MonotonicParams:
    """How a model is made monotone (the ``monotonic.constraint`` params section)."""

    scope: Scope = "mlp_both"
    parametrization: Parametrization = "softplus"
    init: Init = "abs"
    activation: Activation = "keep"


@dataclass(frozen=True)
class PretrainParams:
    """``monotonic.pretrain``: train the tiny base LM first (disable for pretrained checkpoints)."""

    enabled: bool = True
    training: TrainingParams = field(default_factory=TrainingParams)


@dataclass(frozen=True)
class ArmParams:
    """``monotonic.arms.<arm>``: whether the arm is constrained, and its optimisation settings."""

    constrained: bool = False
    training: TrainingParams = field(default_factory=TrainingParams)


@dataclass(frozen=True)
class UATParams:
    """Universal trigger search (paper-scale values in parentheses: 10, 100, 3, 50, 40, 60)."""

    trigger_length: int = 5
    candidates: int = 20
    restarts: int = 2
    sweeps: int = 3
    target_tokens: int = 32
    n_opt: int = 24
    n_eval: int = 40
    grad_batch: int = 8
    score_texts: int = 16
    forward_batch: int = 256

    def __post_init__(self) -> None:
        for name in ("trigger_length", "candidates", "restarts", "sweeps", "target_tokens", "n_opt", "n_eval",
                     "grad_batch", "score_texts", "forward_batch"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)}")


@dataclass(frozen=True)
class HotFlipParams:
    """HotFlip on context tokens (paper-scale: 200 texts, <= 10 flips)."""

    mode: Literal["iterative", "oneshot"] = "iterative"
    n_texts: int = 40
    context_tokens: int = 24
    target_tokens: int = 16
    max_flips: int = 5
    candidates: int = 10
    early_stop: bool = True
    forward_batch: int = 256

    def __post_init__(self) -> None:
        for name in ("n_texts", "context_tokens", "target_tokens", "max_flips", "candidates", "forward_batch"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)}")
        if self.max_flips > self.context_tokens:
            raise ValueError(f"max_flips: must be <= context_tokens ({self.context_tokens}), got {self.max_flips}")


@dataclass(frozen=True)
class EvalParams:
    """``monotonic.eval``: perplexity on the test split."""

    max_length: int = 128
    batch_size: int = 32
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_length", "batch_size", "bootstrap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be a positive integer, got {getattr(self, name)}")


@dataclass(frozen=True)
class AttackParams:
    """``monotonic.attack``: success threshold, bootstrap resamples, UAT and HotFlip budgets."""

    threshold: float = 0.15
    bootstrap: int = 1000
    uat: UATParams = field(default_factory=UATParams)
    hotflip: HotFlipParams = field(default_factory=HotFlipParams)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"threshold: must be > 0, got {self.threshold}")
