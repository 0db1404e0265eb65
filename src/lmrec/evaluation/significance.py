"""Confidence intervals and paired significance tests over per-user metric values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Interval", "PairedTest", "bootstrap_ci", "paired_test"]


@dataclass(frozen=True)
class Interval:
    """A mean with a percentile-bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    level: float = 0.95


@dataclass(frozen=True)
class PairedTest:
    """Difference of means (a - b) on the same users, with its interval and p-values."""

    diff: Interval
    p_bootstrap: float
    p_ttest: float
    n: int


def _bootstrap_means(
    values: np.ndarray, n_resamples: int, seed: int, chunk: int = 100
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(values)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def bootstrap_ci(
    values: np.ndarray, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean of `values`."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level)
    means = _bootstrap_means(values, n_resamples, seed)
    alpha = (1 - level) / 2
    return Interval(
        float(values.mean()),
        float(np.quantile(means, alpha)),
        float(np.quantile(means, 1 - alpha)),
        level,
    )


def paired_test(
    a: np.ndarray, b: np.ndarray, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> PairedTest:
    """Paired bootstrap and paired t-test of mean(a) - mean(b) over the same users."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired_test needs per-user values for the same users")
    d = a - b
    means = _bootstrap_means(d, n_resamples, seed)
    alpha = (1 - level) / 2
    interval = Interval(
        float(d.mean()),
        float(np.quantile(means, alpha)),
        float(np.quantile(means, 1 - alpha)),
        level,
    )
    # Two-sided bootstrap p-value: how often the resampled difference crosses zero.
    p_boot = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    p_t = (
        float(stats.ttest_rel(a, b).pvalue) if d.std() > 1e-12 else (1.0 if d.mean() == 0 else 0.0)
    )
    return PairedTest(interval, p_boot, p_t, len(d))
