import numpy as np
import pytest

from asr_flywheel.stats import paired_delta_interval, rate_intervals


def test_binomial_bootstrap_matches_explicit_row_resampling():
    """The shortcut (Binomial(n, p̂)/n) must give the same CI as resampling rows explicitly."""
    rng = np.random.default_rng(1)
    rows = (rng.random(60) < 0.3).astype(int)
    low, high = rate_intervals(np.array([rows.sum()]), np.array([60]), resamples=20000, confidence=0.95, seed=0)
    explicit = rng.choice(rows, size=(20000, 60), replace=True).mean(axis=1)
    e_low, e_high = np.quantile(explicit, [0.025, 0.975])
    assert low[0] == pytest.approx(e_low, abs=0.02)
    assert high[0] == pytest.approx(e_high, abs=0.02)


def test_degenerate_rates_have_zero_width_and_vectorise_over_groups():
    low, high = rate_intervals(np.array([0, 5, 2]), np.array([5, 5, 4]), resamples=500, confidence=0.95, seed=0)
    assert (low[0], high[0]) == (0.0, 0.0)
    assert (low[1], high[1]) == (1.0, 1.0)
    assert low[2] < 0.5 < high[2]


def test_invalid_counts_are_rejected():
    with pytest.raises(ValueError):
        rate_intervals(np.array([3]), np.array([2]), resamples=100, confidence=0.95, seed=0)


def test_paired_interval_excludes_zero_for_a_large_consistent_drop():
    before = np.ones(40, dtype=int)
    after = np.r_[np.zeros(30, dtype=int), np.ones(10, dtype=int)]
    ci = paired_delta_interval(before, after, resamples=2000, confidence=0.95, seed=0)
    assert ci.high < 0 and ci.excludes_zero()


def test_paired_interval_includes_zero_for_noise():
    before = np.array([1, 0, 1, 0, 1, 0])
    after = np.array([0, 1, 1, 0, 0, 1])
    ci = paired_delta_interval(before, after, resamples=2000, confidence=0.95, seed=0)
    assert ci.low < 0 < ci.high and not ci.excludes_zero()


def test_same_seed_same_interval():
    a = rate_intervals(np.array([3]), np.array([10]), resamples=500, confidence=0.9, seed=7)
    b = rate_intervals(np.array([3]), np.array([10]), resamples=500, confidence=0.9, seed=7)
    assert a[0][0] == b[0][0] and a[1][0] == b[1][0]
