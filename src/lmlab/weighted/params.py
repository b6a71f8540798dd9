"""Typed parameters of the weighted-loss family (``weighted.*`` in params.yaml).

Kept free of torch/transformers imports so that cheap stages (``wl_data``) validate the
configs quickly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lmlab.errors import ParamsError

__all__ = ["WeightedConfig", "SetsParams", "LossParams", "RuntimeParams", "EvalParams", "GAMMA_HINT", "check_gamma",
           "check_configs"]

GAMMA_HINT = "e.g. dvc exp run -S gamma=4.0"


@dataclass(frozen=True)
class SetsParams:
    """``weighted.sets``: rows of every training set (``n_rows``) and the accept fraction of each.

    Names are free; the defaults say the fraction (``frac_1_3`` = one in three accepted). The row
    count is not called ``size``: DVC's run cache ignores params named ``size`` or ``nfiles``
    (treeverse/dvc#10296), so changing it would restore the old sets from cache.
    """

    seed: int = 0
    n_rows: int = 480
    fractions: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.n_rows <= 0:
            raise ValueError(f"n_rows: must be a positive integer, got {self.n_rows}")
        if not self.fractions:
            raise ValueError("fractions: give at least one 'name: accept fraction' entry")
        for name, frac in self.fractions.items():
            if not 0.0 < frac < 1.0:
                raise ValueError(f"fractions: '{name}' must be in (0, 1) (exclusive), got {frac}")


@dataclass(frozen=True)
class WeightedConfig:
    """One ``wl_train@<config>`` item (``weighted.configs.<name>``).

    ``gamma_key`` names the params key the class weight is read from: the top-level ``gamma``
    for the swept configs, ``weighted.baseline_gamma`` (1.0) for the baseline, so the baseline
    does not depend on ``gamma`` and stays cached under ``dvc exp run -S gamma=...``.
    """

    fraction: str
    variant: Literal["accept", "reject"] = "accept"
    gamma_key: str = "gamma"


@dataclass(frozen=True)
class LossParams:
    """``weighted.loss``: which tokens carry the class weight (see :mod:`lmlab.weighted.loss`)."""

    scope: Literal["sequence", "decision", "bce_decision"] = "sequence"


@dataclass(frozen=True)
class RuntimeParams:
    """``weighted.runtime``: CPU threads per process (0 = torch's default).

    One thread is much faster for tiny models on a shared, busy CPU: measured here, a 2-thread
    step took 0.63 s against 0.09 s single-threaded while other jobs ran.
    """

    cpu_threads: int = 1

    def __post_init__(self) -> None:
        if self.cpu_threads < 0:
            raise ValueError(f"cpu_threads: must be >= 0, got {self.cpu_threads}")


@dataclass(frozen=True)
class EvalParams:
    """``weighted.eval``: batch size and generation length of ``wl_eval``."""

    batch_size: int = 64
    max_new_tokens: int = 8
    band_low: float = 0.3
    band_high: float = 0.7

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size: must be a positive integer, got {self.batch_size}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens: must be a positive integer, got {self.max_new_tokens}")
        if not 0 <= self.band_low < self.band_high <= 1:
            raise ValueError(f"band_low: must satisfy 0 <= band_low < band_high <= 1, got {self.band_low}")


def check_gamma(gamma: float) -> None:
    """A class weight (``gamma`` or a config's ``gamma_key``) must be > 0 (a ``check`` of ``load_value``)."""
    if not gamma > 0:
        raise ParamsError(f"gamma must be a number > 0, got {gamma!r}.", hint=GAMMA_HINT)


def check_configs(configs: Mapping[str, WeightedConfig], fractions: Mapping[str, float]) -> None:
    """Every ``weighted.configs.<name>`` must name a fraction of ``weighted.sets.fractions``.

    Raises :class:`ParamsError` keyed ``weighted.configs.<name>.fraction`` (the params loader adds the
    file position when this runs as its ``check``).
    """
    for name, cfg in configs.items():
        if cfg.fraction not in fractions:
            raise ParamsError(f"unknown fraction '{cfg.fraction}' (defined: {sorted(fractions)}).",
                              key=f"weighted.configs.{name}.fraction",
                              hint="use a name of weighted.sets.fractions or add that fraction there.")
