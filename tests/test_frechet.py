import numpy as np
import pytest
from scipy.linalg import sqrtm

from crystal_metrics import frechet_distance, gaussian_statistics


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def _scipy_reference(mu1, s1, mu2, s2):
    covmean = sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_equal_sets_give_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 16))
    mu, sigma = gaussian_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_rank_deficient_equal_sets_give_zero_not_nan():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(10, 64))  # n < d: covariance of rank 9
    mu, sigma = gaussian_statistics(features)
    value = frechet_distance(mu, sigma, mu, sigma)
    assert np.isfinite(value) and value == pytest.approx(0.0, abs=1e-8)


def test_diagonal_covariances_closed_form():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    # tr(A + B - 2 sqrt(AB)) = sum (sqrt a - sqrt b)^2 = 1 + 1 + 0
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(2.0)


def test_pure_mean_shift():
    rng = np.random.default_rng(2)
    sigma = _random_spd(rng, 8)
    shift = rng.normal(size=8)
    assert frechet_distance(np.zeros(8), sigma, shift, sigma) == pytest.approx(shift @ shift)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_scipy_sqrtm_formula(seed):
    rng = np.random.default_rng(seed)
    d = 32
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    expected = _scipy_reference(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected, rel=1e-8)


def test_statistics_match_numpy_in_float64():
    features = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = gaussian_statistics(features)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(features.astype(np.float64), rowvar=False))


@pytest.mark.parametrize("features", [np.zeros((1, 3)), np.zeros(5), np.full((4, 2), np.nan)])
def test_statistics_reject_bad_features(features):
    with pytest.raises(ValueError):
        gaussian_statistics(features)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
