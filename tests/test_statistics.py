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


def _old_numpy_reference(samples, statistic, *, paired, n_resamples, confidence, seed):
    """The hand-written bootstrap this module used before scipy: same draws, same percentiles."""
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    rng = np.random.default_rng(seed)
    if paired:
        idx = rng.integers(0, arrays[0].size, size=(n_resamples, arrays[0].size))
        values = statistic(*[a[idx] for a in arrays])
    else:
        values = statistic(*[a[rng.integers(0, a.size, size=(n_resamples, a.size))] for a in arrays])
    values = values[np.isfinite(values)]
    alpha = 1.0 - confidence
    return tuple(np.quantile(values, [alpha / 2, 1 - alpha / 2]))


@pytest.mark.parametrize("paired", [True, False])
def test_same_draws_as_the_former_numpy_implementation(paired):
    # scipy.stats.bootstrap draws rng.integers(0, n, (r, n)) per sample in order, like the old code, so the
    # intervals are identical; a failure here means a scipy upgrade changed the resampling stream (and so
    # every reported CI), not necessarily a bug - but it must not go unnoticed.
    rng = np.random.default_rng(11)
    if paired:
        samples, statistic = [rng.gamma(2.0, 50.0, 300), rng.integers(20, 400, 300).astype(float)], ratio_of_sums
    else:
        samples, statistic = [rng.normal(0.0, 1.0, 120), rng.normal(0.3, 2.0, 80)], _diff
    ci = bootstrap_ci(samples, statistic, paired=paired, n_resamples=1500, confidence=0.9, seed=5)
    low, high = _old_numpy_reference(samples, statistic, paired=paired, n_resamples=1500, confidence=0.9, seed=5)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


def test_percentiles_of_scipys_own_bootstrap_distribution():
    from scipy import stats

    rng = np.random.default_rng(12)
    a, b = rng.normal(0.0, 1.0, 60), rng.normal(0.5, 1.0, 60)
    ci = bootstrap_ci([a, b], _diff, paired=True, n_resamples=999, confidence=0.8, seed=3)
    res = stats.bootstrap([a, b], lambda x, y, axis=-1: _diff(x, y), n_resamples=999, vectorized=True, paired=True,
                          axis=-1, confidence_level=0.8, method="percentile", rng=np.random.default_rng(3))
    expected = np.quantile(res.bootstrap_distribution, [0.1, 0.9])
    assert ci.low == pytest.approx(expected[0], abs=1e-12) and ci.high == pytest.approx(expected[1], abs=1e-12)
    assert ci.low == pytest.approx(res.confidence_interval.low, abs=1e-12)
    assert ci.high == pytest.approx(res.confidence_interval.high, abs=1e-12)
    assert ci.estimate == pytest.approx(a.mean() - b.mean(), abs=1e-12)


def test_non_finite_resamples_are_dropped_with_a_warning(caplog):
    # Resamples of [1, 2, 3, 0] / [0, 0, 0, 1] without the last unit have a zero denominator (inf or nan).
    num, den = np.array([1.0, 2.0, 3.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0])
    with caplog.at_level("WARNING", logger="lmlab.statistics"):
        ci = bootstrap_ci([num, den], ratio_of_sums, n_resamples=400, seed=2)
    assert "dropped" in caplog.text
    assert np.isfinite(ci.low) and np.isfinite(ci.high) and ci.estimate == 6.0
    low, high = _old_numpy_reference([num, den], ratio_of_sums, paired=True, n_resamples=400, confidence=0.95, seed=2)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    nothing_finite = bootstrap_ci([np.zeros(3), np.zeros(3)], ratio_of_sums, n_resamples=50)
    assert np.isnan(nothing_finite.low) and np.isnan(nothing_finite.high)


def test_size_one_samples_are_held_fixed():
    y = np.random.default_rng(13).normal(0.0, 1.0, 50)
    one = bootstrap_ci([np.array([5.0]), y], _diff, paired=False, n_resamples=700, seed=4)
    alone = bootstrap_ci([y], _mean, n_resamples=700, seed=4)  # same draws: the fixed sample consumes none
    assert one.n == 1 and one.estimate == pytest.approx(5.0 - y.mean())
    assert one.low == pytest.approx(5.0 - alone.high, abs=1e-12)
    assert one.high == pytest.approx(5.0 - alone.low, abs=1e-12)
    single = bootstrap_ci([np.array([3.0]), np.array([2.0])], _diff, paired=True, n_resamples=100)
    assert single.estimate == single.low == single.high == 1.0 and single.n == 1
