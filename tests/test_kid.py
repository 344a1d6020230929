import itertools

import numpy as np
import pytest

from crystal_metrics.metrics.kid import kernel_distance, unbiased_mmd2


def _brute_force_mmd2(x, y):
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1) ** 3
    m = len(x)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return xx + yy - 2 * xy


def test_unbiased_mmd2_matches_the_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(1.0, 1.0, size=(6, 3))
    assert unbiased_mmd2(x, y) == pytest.approx(_brute_force_mmd2(x, y), rel=1e-12)


def test_one_full_subset_equals_the_whole_set_estimate():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    mean, std = kernel_distance(x, y, n_subsets=1, subset_size=40)
    assert mean == pytest.approx(unbiased_mmd2(x, y), rel=1e-12) and std == 0.0


def test_same_distribution_near_zero_shifted_distribution_positive():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same, same_std = kernel_distance(a, b, n_subsets=20, subset_size=300)
    shifted, _ = kernel_distance(a, b + 0.5, n_subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * max(abs(same), same_std)


@pytest.mark.parametrize("a, b", [(np.zeros((5, 3)), np.zeros((5, 4))), (np.zeros((1, 3)), np.zeros((5, 3)))])
def test_bad_shapes(a, b):
    with pytest.raises(ValueError):
        kernel_distance(a, b)
