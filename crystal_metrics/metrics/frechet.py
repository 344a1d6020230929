"""Fréchet distance between Gaussians fitted to two feature sets (the FID/FAD formula), and the
moments that make such a Gaussian from parts of a set."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) in float64 of features shaped (n, d), n >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features shaped (n >= 2, d), got {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], -1)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d² = |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1^½ Σ2 Σ1^½)^½), in float64.

    The trace of the matrix square root is taken from the eigenvalues of the symmetric
    positive semi-definite Σ1^½ Σ2 Σ1^½ (negative round-off clamped to 0): real, never NaN.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shape mismatch: means {mu1.shape}, {mu2.shape}; "
                         f"covariances {sigma1.shape}, {sigma2.shape}")
    sqrt1 = _psd_sqrt(sigma1)
    middle = sqrt1 @ ((sigma2 + sigma2.T) / 2) @ sqrt1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negatives clamped)."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


@dataclass(frozen=True, eq=False)
class Moments:
    """Sufficient statistics of a feature set's Gaussian, float64: the count `n`, the sum of the
    features `total` (d,) and the sum of their outer products `outer` (d, d). Sets (shards of
    one set, files made apart, processes of a distributed run) add exactly: the moments of a
    union are the sum of the moments of its parts, whatever the order or the split."""

    n: int
    total: np.ndarray
    outer: np.ndarray

    @classmethod
    def of(cls, features) -> Moments:
        """The moments of features (n, d)."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"need features shaped (n, d), got {features.shape}")
        return cls(len(features), features.sum(axis=0), features.T @ features)

    @classmethod
    def from_gaussian(cls, n: int, mu, sigma) -> Moments:
        """The moments of n features with mean `mu` (d,) and unbiased covariance `sigma`
        (d, d) (as a statistics file keeps them)."""
        mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
        return cls(int(n), n * mu, (n - 1) * sigma + n * np.outer(mu, mu))

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.n + other.n, self.total + other.total, self.outer + other.outer)

    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d,) and unbiased covariance (d, d), float64; needs n >= 2."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 features, got {self.n}")
        if not (np.isfinite(self.total).all() and np.isfinite(self.outer).all()):
            raise ValueError("features contain NaN or infinite values")
        mu = self.total / self.n
        sigma = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, (sigma + sigma.T) / 2
