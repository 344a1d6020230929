"""Fully connected crystal graphs: every ordered pair of atoms of a cell, itself included.

A cell of <= 20 atoms has <= 400 pairs, so the graph is complete instead of a k-nearest one: it
does not depend on the (noisy) lattice, and no neighbour cutoff or tie can change it. Pair
features are lattice-free Fourier features of the minimum-image fractional difference
(DiffCSP's CSPNet) and, optionally, the shortest periodic distance in Å under the current cell.
"""
from __future__ import annotations

import math

import torch

from .geometry import min_image


def pair_index(n_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(src, dst, structure) (E,) long for all n_b^2 ordered pairs (i, j) of each structure b,
    atoms numbered consecutively over the batch (n_atoms (B,))."""
    dev = n_atoms.device
    pairs = n_atoms * n_atoms
    structure = torch.repeat_interleave(torch.arange(len(n_atoms), device=dev), pairs)
    first_pair = torch.cumsum(pairs, 0) - pairs
    first_atom = torch.cumsum(n_atoms, 0) - n_atoms
    local = torch.arange(int(pairs.sum()), device=dev) - first_pair[structure]
    n = n_atoms[structure]
    base = first_atom[structure]
    return base + local // n, base + local % n, structure


_IMAGES = torch.cartesian_prod(*[torch.tensor([-1.0, 0.0, 1.0])] * 3)   # (27, 3)


def fourier_features(diff: torch.Tensor, n_freq: int) -> torch.Tensor:
    """(E, 3) fractional differences -> (E, 6 n_freq): sin, cos of 2 pi k d, k = 1..n_freq.

    Periodic in each coordinate, so the choice of image does not matter."""
    k = torch.arange(1, n_freq + 1, device=diff.device, dtype=diff.dtype) * (2 * math.pi)
    arg = (diff[..., None] * k).flatten(1)
    return torch.cat([torch.sin(arg), torch.cos(arg)], 1)


def shortest_distance(diff: torch.Tensor, lattice: torch.Tensor, self_pair: torch.Tensor):
    """Shortest periodic distance (E,) in Å of pairs with min-image fractional difference diff
    (E, 3) in cells ``lattice`` (E, 3, 3) (rows, Å), over the 27 neighbouring images (exact for
    reduced cells); for an atom with itself (``self_pair``), the shortest lattice vector."""
    images = _IMAGES.to(diff)
    cart = torch.einsum("eki,eij->ekj", diff[:, None, :] + images, lattice)
    dist = cart.norm(dim=-1)                                                   # (E, 27)
    zero_image = (images.abs().sum(-1) == 0)[None] & self_pair[:, None]
    return dist.masked_fill(zero_image, math.inf).amin(1)


def gaussian_basis(x: torch.Tensor, stop: float, n: int) -> torch.Tensor:
    """(E,) -> (E, n) Gaussians centred on linspace(0, stop, n), width the spacing."""
    centres = torch.linspace(0.0, stop, n, device=x.device, dtype=x.dtype)
    width = stop / max(n - 1, 1)
    return torch.exp(-0.5 * ((x[:, None] - centres) / width) ** 2)


def pair_features(frac: torch.Tensor, lattice: torch.Tensor, src, dst, structure,
                  n_freq: int, n_rbf: int, rbf_max: float) -> torch.Tensor:
    """Invariant pair features (E, 6 n_freq + n_rbf) of atoms ``frac`` (N, 3) in cells ``lattice``
    (B, 3, 3) Å: Fourier features of the fractional difference, then (if n_rbf > 0) Gaussians of
    the shortest periodic distance (Å). Invariant under rotation, translation and permutation."""
    diff = min_image(frac[dst] - frac[src])
    feats = [fourier_features(diff, n_freq)]
    if n_rbf > 0:
        dist = shortest_distance(diff, lattice[structure].to(diff.dtype), src == dst)
        feats.append(gaussian_basis(dist, rbf_max, n_rbf))
    return torch.cat(feats, 1)
