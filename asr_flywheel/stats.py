"""Bootstrap confidence intervals for keyword error rates, vectorised over groups.

KER is a 0/1 per-row metric, so the mean of n rows resampled with replacement is distributed exactly as
Binomial(n, p̂)/n. Drawing that directly is the percentile bootstrap without materialising n×B row
indices, so CIs for thousands of per-term groups cost O(groups × B) instead of O(rows × B).

For a paired comparison (same rows scored before and after), each row's difference is -1, 0 or +1 and a
resample is a Multinomial(n, [p₋₁, p₀, p₊₁]) draw of those three counts: the paired bootstrap, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def rate_intervals(
    misses: np.ndarray, counts: np.ndarray, *, resamples: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CIs for many binary rates at once (one per group). Returns (low, high)."""
    misses = np.asarray(misses, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    if misses.shape != counts.shape:
        raise ValueError("misses and counts must have the same shape")
    if np.any(counts <= 0) or np.any(misses < 0) or np.any(misses > counts):
        raise ValueError("each group needs 0 <= misses <= counts and counts > 0")
    rng = np.random.default_rng(seed)
    p = misses / counts
    draws = rng.binomial(counts[:, None], p[:, None], size=(len(counts), resamples)) / counts[:, None]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha], axis=1)
    return low, high


def paired_delta_interval(
    before: np.ndarray, after: np.ndarray, *, resamples: int, confidence: float, seed: int
) -> Interval:
    """Percentile-bootstrap CI of mean(after - before) for paired 0/1 outcomes."""
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    if before.shape != after.shape or before.ndim != 1 or len(before) == 0:
        raise ValueError("paired outcomes must be equal-length, non-empty 1-D arrays")
    diff = after - before
    n = len(diff)
    pvals = np.array([(diff == -1).sum(), (diff == 0).sum(), (diff == 1).sum()], dtype=np.float64) / n
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, pvals, size=resamples)
    deltas = (counts[:, 2] - counts[:, 0]) / n
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [alpha, 1.0 - alpha])
    return Interval(float(low), float(high))
