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


def test_subsets_are_half_the_smaller_set_below_twice_the_subset_size():
    # 40 and 60 structures: subsets of 20 (not 40, which would be the whole smaller set every
    # time and give a spread of exactly 0, as it did)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(60, 5))
    mean, std, m = kernel_distance(x, y, n_subsets=5, seed=3)
    draw = np.random.default_rng(3)
    expected = [unbiased_mmd2(x[draw.choice(40, 20, replace=False)],
                              y[draw.choice(60, 20, replace=False)]) for _ in range(5)]
    assert m == 20 and mean == pytest.approx(np.mean(expected), rel=1e-12)
    assert std == pytest.approx(np.std(expected), rel=1e-12) and std > 0


def test_large_sets_use_subsets_of_1000_as_the_reference_implementations():
    rng = np.random.default_rng(4)
    _, std, m = kernel_distance(rng.normal(size=(2000, 3)), rng.normal(size=(2500, 3)),
                                n_subsets=2)
    assert m == 1000 and std > 0


def test_below_4_structures_there_is_no_spread_to_report():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    mean, std, m = kernel_distance(x, y, n_subsets=3)
    assert (m, std) == (3, None)
    assert mean == pytest.approx(unbiased_mmd2(x, y), rel=1e-12)  # the whole sets, reordered


@pytest.mark.parametrize("a, b", [(np.zeros((5, 3)), np.zeros((5, 4))), (np.zeros((1, 3)), np.zeros((5, 3)))])
def test_bad_shapes(a, b):
    with pytest.raises(ValueError):
        kernel_distance(a, b)
