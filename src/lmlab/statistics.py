"""Percentile bootstrap confidence intervals for any statistic of one or more samples.

``paired=True`` resamples the *same* indices from every array (the arrays are aligned per unit,
e.g. two models' losses on the same test documents), so the between-unit variation that both
share cancels out of a difference or a ratio. ``paired=False`` resamples each array on its own,
as for two independent samples. The statistic is vectorised: it receives arrays with a leading
resample axis, ``(n_resamples, n)``, and must reduce along the last axis to ``(n_resamples,)``.

The resampling itself is :func:`scipy.stats.bootstrap`; :func:`bootstrap_ci` is a thin wrapper
that adds what scipy does not do (see its docstring).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)

__all__ = ["BootstrapCI", "bootstrap_ci", "ratio_of_sums"]

_CHUNK_CELLS = 2_000_000  # resamples per scipy batch = this / n: bounds memory for large n


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its percentile interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence,
                "n_resamples": self.n_resamples, "n": self.n}


def bootstrap_ci(
    samples: Sequence[np.ndarray | Sequence[float]],
    statistic: Callable[..., np.ndarray],
    *,
    paired: bool = True,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile bootstrap CI of ``statistic(*samples)``, resampled by :func:`scipy.stats.bootstrap`.

    ``statistic`` takes one array per sample, each shaped ``(r, n_i)``, and returns ``(r,)``.
    The resamples come from ``scipy.stats.bootstrap(method="percentile", vectorized=True,
    axis=-1, paired=paired, rng=np.random.default_rng(seed))`` in batches of
    ``_CHUNK_CELLS // max(n_i)`` resamples (bounded memory). What this wrapper adds:

    * the point estimate ``statistic(*samples)`` and the :class:`BootstrapCI` record;
    * non-finite resampled statistics (e.g. a ratio with a zero denominator) are dropped with a
      logged warning and the percentiles (``np.quantile``, linear interpolation - scipy's default
      too) are taken over the finite ones; scipy would return NaN bounds. All non-finite: NaN bounds;
    * a sample of size 1 is held fixed (it has only one resample; scipy refuses samples with fewer
      than two observations). With ``paired=True`` and ``n = 1``, or when every sample has size 1,
      the bootstrap distribution is the point estimate itself, so ``low == high == estimate``;
    * input checks with this package's messages, and ``n`` = the paired length or the smallest
      unpaired sample size.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    if not arrays or any(a.ndim != 1 or a.size == 0 for a in arrays):
        raise ValueError("every sample must be a non-empty 1-D array")
    if paired and len({a.size for a in arrays}) != 1:
        raise ValueError(f"paired samples must have equal lengths, got {[a.size for a in arrays]}")
    estimate = float(np.asarray(statistic(*[a[None, :] for a in arrays])).reshape(-1)[0])
    n = arrays[0].size if paired else int(min(a.size for a in arrays))
    # Samples scipy resamples; size-1 samples stay fixed (drawing from [0, 1) consumes no random
    # numbers, so leaving them out does not change the stream the other samples get).
    moving = [i for i, a in enumerate(arrays) if a.size > 1]
    if not moving:
        values = np.full(n_resamples, estimate)
    else:
        def resampled_statistic(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
            full: list[np.ndarray] = [np.empty(0)] * len(arrays)
            for i, x in zip(moving, xs):
                full[i] = x
            r = xs[0].shape[0]
            for i, a in enumerate(arrays):
                if a.size == 1:
                    full[i] = np.broadcast_to(a, (r, 1))
            return np.asarray(statistic(*full), dtype=np.float64).reshape(r)

        with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore"):
            # scipy warns DegenerateDataWarning on NaN bounds; we recompute the bounds below.
            warnings.simplefilter("ignore", stats.DegenerateDataWarning)
            res = stats.bootstrap([arrays[i] for i in moving], resampled_statistic, n_resamples=n_resamples,
                                  batch=max(1, _CHUNK_CELLS // max(a.size for a in arrays)), vectorized=True,
                                  paired=paired, axis=-1, confidence_level=confidence, method="percentile",
                                  rng=np.random.default_rng(seed))
        values = np.asarray(res.bootstrap_distribution, dtype=np.float64).reshape(n_resamples)
    finite = values[np.isfinite(values)]
    if finite.size < values.size:
        logger.warning("bootstrap: dropped %d non-finite resampled statistics of %d", values.size - finite.size,
                       values.size)
    alpha = 1.0 - confidence
    if finite.size == 0:
        low = high = float("nan")
    else:
        low, high = (float(q) for q in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
    return BootstrapCI(estimate, low, high, confidence, n_resamples, n)


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``sum(numerator) / sum(denominator)`` along the last axis (a micro-average, e.g. NLL per token)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(numerator, axis=-1) / np.sum(denominator, axis=-1)
