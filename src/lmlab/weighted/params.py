"""Typed parameters of the weighted-loss family (``weighted.*`` in params.yaml).

Kept free of torch/transformers imports so that cheap stages (``wl_data``) validate the
configs quickly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from lmlab.errors import ParamsError

__all__ = ["WeightedConfig", "SetsParams", "GridParams", "LossParams", "PromptParams", "RuntimeParams", "EvalParams",
           "GAMMA_HINT", "check_gamma", "check_configs", "check_grid", "odds_fraction", "odds_fractions"]

GAMMA_HINT = "e.g. dvc exp run -S gamma=4.0"


def odds_fraction(odds: tuple[int, int]) -> float:
    """Accept fraction of accept:reject odds ``(a, r)``: ``a / (a + r)`` (1:2 -> 1/3)."""
    accept, reject = odds
    return accept / (accept + reject)


def odds_fractions(odds: Mapping[str, tuple[int, int]]) -> dict[str, float]:
    """``{set name: accept fraction}`` of ``weighted.sets.odds``."""
    return {name: odds_fraction(pair) for name, pair in odds.items()}


@dataclass(frozen=True)
class SetsParams:
    """``weighted.sets``: rows of every training set (``n_rows``) and the accept:reject odds of each.

    The lab's write-up (seed 003) names its sets "1:2, 1:3, 1:4, 1:8" and verified them as
    "1:2 -> 33%, 1:3 -> 25%, 1:4 -> 20%, 1:8 -> 11%" accepted: accept:reject ODDS, so a set is
    given as ``[accept, reject]`` and its accept fraction is ``accept / (accept + reject)``
    (``odds_1_2: [1, 2]`` = one accepted for every two rejected = 1/3). The upstream script's other
    reading ("1 in N accepted", 50/33/25/12.5 %) is the odds 1:1, 1:2, 1:3, 1:7. Names are free;
    the defaults say the odds. The row count is not called ``size``: DVC's run cache ignores params
    named ``size`` or ``nfiles`` (treeverse/dvc#10296), so changing it would restore the old sets.
    """

    seed: int = 0
    n_rows: int = 480
    odds: dict[str, tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        if self.n_rows <= 0:
            raise ValueError(f"n_rows: must be a positive integer, got {self.n_rows}")
        if not self.odds:
            raise ValueError("odds: give at least one 'name: [accept, reject]' entry")
        for name, (accept, reject) in self.odds.items():
            if accept <= 0 or reject <= 0:
                raise ValueError(f"odds: '{name}' must be [accept, reject] with both counts >= 1, got "
                                 f"[{accept}, {reject}]")

    @property
    def fractions(self) -> dict[str, float]:
        """``{set name: accept fraction}`` (what :func:`lmlab.weighted.data.write_sets` draws)."""
        return odds_fractions(self.odds or {})


@dataclass(frozen=True)
class WeightedConfig:
    """One ``wl_train@<config>`` item (``weighted.configs.<name>``).

    ``set`` names the training set (a key of ``weighted.sets.odds``); ``gamma_key`` names the params
    key the class weight is read from: the top-level ``gamma`` for the swept configs,
    ``weighted.baseline_gamma`` (1.0) for the baseline, so the baseline does not depend on ``gamma``
    and stays cached under ``dvc exp run -S gamma=...``.
    """

    set: str
    variant: Literal["accept", "reject"] = "accept"
    gamma_key: str = "gamma"


@dataclass(frozen=True)
class GridParams:
    """``weighted.grid``: the lab's 19-run grid and the thresholds of its success criteria.

    ``gammas`` gives, per training set, the class weights its ``accept`` and ``reject`` configs run
    at (the upstream job array: 1:2 x {2, 4, 8}, the other sets x {2, 4}); with the gamma = 1
    baseline that is 1 + 6 + 12 = 19 runs. ``scripts/lab sweep`` queues one experiment per distinct
    gamma, so a set outside a gamma's list is trained there too: those runs are reported as outside
    the grid and left out of the criteria. The criteria (write-up "Success Criteria" 3-5):
    acceptance spans ``weighted.eval.band_low..band_high``; accuracy > ``min_accuracy`` for more
    than ``most_share`` of the runs.
    """

    gammas: dict[str, tuple[float, ...]] | None = None
    min_accuracy: float = 0.6
    most_share: float = 0.5

    def __post_init__(self) -> None:
        if not self.gammas:
            raise ValueError("gammas: give at least one 'set name: [gamma, ...]' entry")
        for name, values in self.gammas.items():
            if not values or any(not g > 0 for g in values):
                raise ValueError(f"gammas: '{name}' must be a non-empty list of numbers > 0, got {list(values)}")
        if not 0 < self.min_accuracy < 1:
            raise ValueError(f"min_accuracy: must be in (0, 1), got {self.min_accuracy}")
        if not 0 <= self.most_share < 1:
            raise ValueError(f"most_share: must be in [0, 1), got {self.most_share}")


@dataclass(frozen=True)
class LossParams:
    """``weighted.loss``: which tokens carry the class weight (see :mod:`lmlab.weighted.loss`)."""

    scope: Literal["sequence", "decision", "bce_decision"] = "sequence"


@dataclass(frozen=True)
class PromptParams:
    """``weighted.prompt``: how conversations become text (see :mod:`lmlab.chat`).

    ``chat_template``: ``auto`` formats with the base tokenizer's chat template when it has one
    (instruction-tuned bases: SmolLM2-Instruct, Qwen2.5-Instruct), else the plain
    ``System:/User:/Assistant:`` layout (the tiny embedded tokenizers have none); ``never``
    always uses the plain layout; ``always`` requires a template. ``wl_eval`` reads the choice
    from the trained model dir (``train_summary.json``), so evaluation formats as training did.
    """

    chat_template: Literal["auto", "never", "always"] = "auto"


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


def check_configs(configs: Mapping[str, WeightedConfig], sets: Mapping[str, object]) -> None:
    """Every ``weighted.configs.<name>`` must name a set of ``weighted.sets.odds``, and a config named
    after a set (``odds_1_3-accept``) must train on that set: result tables show the name, not the set.

    Raises :class:`ParamsError` keyed ``weighted.configs.<name>.set`` (the params loader adds the
    file position when this runs as its ``check``).
    """
    for name, cfg in configs.items():
        if cfg.set not in sets:
            raise ParamsError(f"unknown set '{cfg.set}' (defined: {sorted(sets)}).",
                              key=f"weighted.configs.{name}.set",
                              hint="use a name of weighted.sets.odds or add that set there.")
        named = [s for s in sets if name.startswith(f"{s}-")]
        if named and cfg.set not in named:
            raise ParamsError(f"config '{name}' is named after set '{named[0]}' but trains on '{cfg.set}'.",
                              key=f"weighted.configs.{name}.set",
                              hint=f"rename the config (e.g. '{cfg.set}-{cfg.variant}') or fix its set.")


def check_grid(grid: GridParams, sets: Mapping[str, object]) -> None:
    """Every set of ``weighted.grid.gammas`` must be a set of ``weighted.sets.odds``."""
    for name in grid.gammas or {}:
        if name not in sets:
            raise ParamsError(f"unknown set '{name}' (defined: {sorted(sets)}).", key=f"weighted.grid.gammas.{name}",
                              hint="use a name of weighted.sets.odds.")
