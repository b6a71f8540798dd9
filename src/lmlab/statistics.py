"""Percentile bootstrap confidence intervals for any statistic of one or more samples.

``paired=True`` resamples the *same* indices from every array (the arrays are aligned per unit,
e.g. two models' losses on the same test documents), so the between-unit variation that both
share cancels out of a difference or a ratio. ``paired=False`` resamples each array on its own,
as for two independent samples. The statistic is vectorised: it receives arrays with a leading
resample axis, ``(n_resamples, n)``, and must reduce along the last axis to ``(n_resamples,)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["BootstrapCI", "bootstrap_ci", "ratio_of_sums"]

_CHUNK_CELLS = 2_000_000  # resample rows per chunk = this / n: bounds memory for large n


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
    """Percentile bootstrap CI of ``statistic(*samples)``.

    ``statistic`` takes one array per sample, each shaped ``(r, n_i)``, and returns ``(r,)``.
    Non-finite resampled statistics (e.g. a ratio with a zero denominator) are dropped with a warning.
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
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(a.size for a in arrays))
    stats: list[np.ndarray] = []
    done = 0
    while done < n_resamples:
        r = min(chunk, n_resamples - done)
        if paired:
            idx = rng.integers(0, arrays[0].size, size=(r, arrays[0].size))
            resampled = [a[idx] for a in arrays]
        else:
            resampled = [a[rng.integers(0, a.size, size=(r, a.size))] for a in arrays]
        stats.append(np.asarray(statistic(*resampled), dtype=np.float64).reshape(r))
        done += r
    values = np.concatenate(stats)
    finite = values[np.isfinite(values)]
    if finite.size < values.size:
        logger.warning("bootstrap: dropped %d non-finite resampled statistics of %d", values.size - finite.size,
                       values.size)
    alpha = 1.0 - confidence
    if finite.size == 0:
        low = high = float("nan")
    else:
        low, high = (float(q) for q in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
    n = arrays[0].size if paired else int(min(a.size for a in arrays))
    return BootstrapCI(estimate, low, high, confidence, n_resamples, n)


def ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``sum(numerator) / sum(denominator)`` along the last axis (a micro-average, e.g. NLL per token)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(numerator, axis=-1) / np.sum(denominator, axis=-1)
