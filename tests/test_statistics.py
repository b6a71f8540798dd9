"""Bootstrap CIs: coverage of the true value, narrowing with n, paired vs unpaired, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from lmlab.statistics import bootstrap_ci, ratio_of_sums


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.mean(axis=-1) - b.mean(axis=-1)


def test_ci_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    hits = 0
    for rep in range(60):
        ci = bootstrap_ci([rng.normal(3.0, 2.0, size=80)], _mean, n_resamples=500, seed=rep)
        assert ci.low <= ci.estimate <= ci.high
        hits += ci.low <= 3.0 <= ci.high
    assert hits >= 50  # nominal 95 % of 60 = 57; percentile CIs run slightly narrow at n=80


def test_ci_narrows_with_more_data():
    rng = np.random.default_rng(2)
    small = bootstrap_ci([rng.exponential(1.0, size=40)], _mean, n_resamples=1000)
    large = bootstrap_ci([rng.exponential(1.0, size=1600)], _mean, n_resamples=1000)
    assert (large.high - large.low) < 0.3 * (small.high - small.low)


def test_pairing_removes_shared_variation():
    rng = np.random.default_rng(3)
    shared = rng.normal(0.0, 5.0, size=200)  # per-document difficulty shared by both models
    a = shared + rng.normal(0.0, 0.2, size=200)
    b = shared + 0.1 + rng.normal(0.0, 0.2, size=200)
    paired = bootstrap_ci([a, b], _diff, paired=True, n_resamples=1000)
    unpaired = bootstrap_ci([a, b], _diff, paired=False, n_resamples=1000)
    assert paired.estimate == pytest.approx(unpaired.estimate)
    assert (paired.high - paired.low) < 0.2 * (unpaired.high - unpaired.low)
    assert paired.high < 0  # b is truly worse by 0.1: only the paired CI can tell


def test_same_seed_same_interval_and_ratio_of_sums():
    x = np.arange(1.0, 21.0)
    n = np.full(20, 2.0)
    first = bootstrap_ci([x, n], ratio_of_sums, seed=7, n_resamples=300)
    assert first == bootstrap_ci([x, n], ratio_of_sums, seed=7, n_resamples=300)
    assert first.estimate == pytest.approx(x.sum() / n.sum())


def test_input_checks():
    with pytest.raises(ValueError, match="equal lengths"):
        bootstrap_ci([np.ones(3), np.ones(4)], _diff, paired=True)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([np.array([])], _mean)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([np.ones(3)], _mean, confidence=1.5)
