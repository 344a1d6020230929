"""DimeNet's radial and spherical bases, as torch_geometric 2.0.1 builds them for CDVAE, without
sympy: spherical Bessel roots and normalisers from scipy, the functions by recurrences in torch.

Distances enter as x = d / cutoff (dimensionless); angles in radians.
"""
from __future__ import annotations

import math
from functools import cache
from itertools import pairwise

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import spherical_jn


def spherical_jn_at(r: float, order: int) -> float:
    """j_order(r), argument first (for root finding)."""
    return spherical_jn(order, r)


@cache
def bessel_roots(n_orders: int, n_roots: int) -> np.ndarray:
    """First `n_roots` positive roots z_lk of the spherical Bessel functions j_l, l < `n_orders`,
    shape (n_orders, n_roots), rounded to float32 as torch_geometric stores them (the values the
    CDVAE models were trained with). Roots of j_l interlace those of j_(l-1), which bracket them.
    """
    roots = np.zeros((n_orders, n_roots), dtype=np.float32)
    brackets = np.arange(1, n_roots + n_orders) * np.pi  # roots of j_0
    roots[0] = brackets[:n_roots]
    for order in range(1, n_orders):
        brackets = np.array([brentq(spherical_jn_at, lo, hi, args=(order,))
                             for lo, hi in pairwise(brackets)], dtype=np.float32)
        roots[order] = brackets[:n_roots]
    return roots.astype(np.float64)


@cache
def bessel_normalisers(n_orders: int, n_roots: int) -> np.ndarray:
    """1 / sqrt(j_(l+1)(z_lk)² / 2), which makes the radial functions orthonormal on [0, 1];
    shape (n_orders, n_roots)."""
    roots = bessel_roots(n_orders, n_roots)
    orders = np.arange(1, n_orders + 1)[:, None]
    return 1.0 / np.sqrt(0.5 * spherical_jn(orders, roots) ** 2)


def envelope(x: torch.Tensor, exponent: int = 5) -> torch.Tensor:
    """DimeNet's smooth cutoff u(x) = 1/x + a x^(p-1) + b x^p + c x^(p+1), p = exponent + 1.

    As in torch_geometric 2.0.1 (CDVAE's version) it is not cut to 0 beyond x = 1 (later
    versions are); u(1) = 0, and CrystalNN neighbours lie within 7 Å, the models' cutoff, unless
    the Voronoi search had to widen its sphere.
    """
    p = exponent + 1
    a, b, c = -(p + 1) * (p + 2) / 2, p * (p + 2), -p * (p + 1) / 2
    x_p0 = x.pow(p - 1)
    return 1.0 / x + a * x_p0 + b * x_p0 * x + c * x_p0 * x * x


def radial_basis(x: torch.Tensor, frequencies: torch.Tensor, exponent: int = 5) -> torch.Tensor:
    """u(x) sin(f_n x) for the (learned) frequencies f_n: (E,) -> (E, n_radial)."""
    x = x.unsqueeze(-1)
    return envelope(x, exponent) * torch.sin(frequencies * x)


def spherical_bessel_basis(x: torch.Tensor, n_orders: int, n_roots: int,
                           exponent: int = 5) -> torch.Tensor:
    """u(x) N_lk j_l(z_lk x): (E,) -> (E, n_orders, n_roots).

    j_l by upward recurrence j_(l+1) = (2l+1)/y j_l - j_(l-1) from j_-1 = cos y / y and
    j_0 = sin y / y, which is the closed form torch_geometric evaluates, accurate in float64
    for every distance a valid structure has.
    """
    roots = torch.as_tensor(bessel_roots(n_orders, n_roots), dtype=x.dtype, device=x.device)
    norms = torch.as_tensor(bessel_normalisers(n_orders, n_roots), dtype=x.dtype, device=x.device)
    y = roots * x[:, None, None]  # (E, L, K): the argument of order l in row l
    previous, current = torch.cos(y) / y, torch.sin(y) / y
    values = [current[:, 0]]
    for order in range(n_orders - 1):
        previous, current = current, (2 * order + 1) / y * current - previous
        values.append(current[:, order + 1])
    return envelope(x, exponent)[:, None, None] * norms * torch.stack(values, dim=1)


def spherical_harmonics(angle: torch.Tensor, n_orders: int) -> torch.Tensor:
    """Real spherical harmonics Y_l^0(θ) = sqrt((2l+1)/4π) P_l(cos θ): (T,) -> (T, n_orders)."""
    c = torch.cos(angle)
    legendre = [torch.ones_like(c), c]
    for order in range(1, n_orders - 1):
        legendre.append(((2 * order + 1) * c * legendre[order] - order * legendre[order - 1])
                        / (order + 1))
    scale = torch.tensor([math.sqrt((2 * order + 1) / (4 * math.pi)) for order in range(n_orders)],
                         dtype=angle.dtype, device=angle.device)
    return torch.stack(legendre[:n_orders], dim=1) * scale
