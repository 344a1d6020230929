"""DimeNet's bases without sympy: known values, orthonormality and the smooth cutoff."""
import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import spherical_jn

from crystal_metrics.cdvae.basis import (
    bessel_normalisers,
    bessel_roots,
    envelope,
    radial_basis,
    spherical_bessel_basis,
    spherical_harmonics,
)


def test_roots_are_known_values_rounded_to_float32():
    roots = bessel_roots(7, 6)
    assert roots.shape == (7, 6)
    np.testing.assert_array_equal(roots[0], np.float32(np.arange(1, 7) * np.pi))  # sin x / x
    # tan x = x, first root of j_1; j_2's first root 5.763459...
    assert roots[1, 0] == np.float32(4.493409457909064) and roots[2, 0] == np.float32(5.763459196894550)
    assert np.all(np.diff(roots, axis=1) > 0) and np.all(roots[1:, 0] > roots[:-1, 0])
    assert np.abs(spherical_jn(np.arange(7)[:, None], roots)).max() < 1e-6  # float32 rounding


def test_radial_functions_are_orthonormal_on_the_unit_interval():
    """∫ x² N_lk N_lm j_l(z_lk x) j_l(z_lm x) dx = δ_km: what the normalisers are for."""
    roots, norms = bessel_roots(4, 3), bessel_normalisers(4, 3)
    for order in range(4):
        for k in range(3):
            for m in range(3):
                value = quad(lambda x, n=order, a=k, b=m: x * x * norms[n, a] * norms[n, b]
                             * spherical_jn(n, roots[n, a] * x) * spherical_jn(n, roots[n, b] * x),
                             0, 1)[0]
                assert value == pytest.approx(float(k == m), abs=1e-6)


def test_spherical_bessel_basis_equals_scipy_times_envelope():
    """From 0.5 Å (the structural validity threshold) to the 7 Å cutoff; values reach ~300."""
    x = torch.linspace(0.5 / 7, 1.0, 400, dtype=torch.float64)
    ours = spherical_bessel_basis(x, 7, 6).numpy()
    xs = x.numpy()[:, None, None]
    expected = (envelope(x).numpy()[:, None, None] * bessel_normalisers(7, 6)
                * spherical_jn(np.arange(7)[None, :, None], bessel_roots(7, 6) * xs))
    assert ours.shape == (400, 7, 6)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-8)


def test_spherical_harmonics_are_legendre_polynomials_scaled():
    angle = torch.linspace(0, np.pi, 50, dtype=torch.float64)
    c = torch.cos(angle).numpy()
    y = spherical_harmonics(angle, 4).numpy()
    legendre = [np.ones_like(c), c, (3 * c**2 - 1) / 2, (5 * c**3 - 3 * c) / 2]
    for order in range(4):
        np.testing.assert_allclose(y[:, order], np.sqrt((2 * order + 1) / (4 * np.pi))
                                   * legendre[order], atol=1e-14)


def test_envelope_vanishes_smoothly_at_the_cutoff_and_is_not_cut_beyond():
    x = torch.tensor([1.0, 1.2], dtype=torch.float64, requires_grad=True)
    u = envelope(x)
    (grad,) = torch.autograd.grad(u[0], x, create_graph=True)
    (second,) = torch.autograd.grad(grad[0], x)
    assert abs(u[0].item()) < 1e-12 and abs(grad[0].item()) < 1e-10 and abs(second[0].item()) < 1e-8
    # torch_geometric 2.0.1 (CDVAE's) keeps the polynomial beyond x = 1: 1/1.2 - 28·1.2⁵ + 48·1.2⁶ - 21·1.2⁷
    assert u[1].item() == pytest.approx(1 / 1.2 - 28 * 1.2**5 + 48 * 1.2**6 - 21 * 1.2**7)
    assert radial_basis(torch.tensor([0.5], dtype=torch.float64),
                        torch.tensor([np.pi], dtype=torch.float64)).item() == pytest.approx(
        envelope(torch.tensor(0.5, dtype=torch.float64)).item())  # sin(π/2) = 1
