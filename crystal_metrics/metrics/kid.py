"""Kernel Inception-style Distance: unbiased squared MMD with the cubic polynomial kernel.

k(x, y) = (x·y / d + 1)³ (Bińkowski et al. 2018), averaged over random subsets of equal size
drawn without replacement from each set, as in the reference implementations of KID (which use
subsets of 1,000; here at most half of each set, so that small sets still show a spread).
"""
from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x·yᵀ / d + 1)³ for x (n, d), y (m, d); float64 (n, m)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD between equal-size samples x, y (m, d) with the polynomial kernel."""
    m = len(x)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kernel_distance(features_a, features_b, n_subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float | None, int]:
    """KID between two feature sets (n, d): mean and standard deviation over random subsets, and
    the subset size m.

    m = min(subset_size, n_a // 2, n_b // 2): at most half of each set, so that the subsets
    differ and their spread measures the estimator's sampling variation (subsets as large as a
    set are that whole set every time, and their spread is zero). The mean is unbiased for any m,
    so it is comparable with KIDs of other subset sizes; only the spread depends on m. With
    fewer than 4 structures in a set no two subsets of 2 or more can differ: m is the smaller
    set's size and the standard deviation is None (none available). The estimate is unbiased, so
    it can be slightly negative when the two sets come from the same distribution.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two feature sets (n, d) of equal d, got {a.shape} and {b.shape}")
    m = min(subset_size, len(a) // 2, len(b) // 2)
    spread = m >= 2
    if not spread:
        m = min(len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least 2 structures in each set")
    rng = np.random.default_rng(seed)
    values = [unbiased_mmd2(a[rng.choice(len(a), m, replace=False)],
                            b[rng.choice(len(b), m, replace=False)]) for _ in range(n_subsets)]
    return float(np.mean(values)), (float(np.std(values)) if spread else None), m
