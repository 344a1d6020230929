"""Shortest interatomic distance in a periodic crystal, an atom's own images included."""
from __future__ import annotations

import numpy as np

from ..crystal import Crystal

#: Above this many lattice images the cell is LLL-reduced first (same lattice, fewer images).
MAX_IMAGES = 343


def min_distance(crystal: Crystal) -> float:
    """Smallest distance (Å) between any two atoms or an atom and any periodic image of itself.

    Exact: every lattice translation that could give a distance up to the shortest lattice
    vector is enumerated, after LLL reduction when the cell is very skewed.
    """
    lattice, frac = crystal.lattice, crystal.frac_coords
    ranges = _image_ranges(lattice)
    if np.prod(2 * ranges + 1) > MAX_IMAGES:
        lattice, frac = _lll_reduce(lattice, frac)
        ranges = _image_ranges(lattice)
    axes = [np.arange(-r, r + 1) for r in ranges]
    images = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3) @ lattice  # (m, 3)
    diff = frac[None, :, :] - frac[:, None, :]
    diff -= np.round(diff)
    cart = diff @ lattice  # (n, n, 3)
    d2 = ((cart[:, :, None, :] + images[None, None, :, :]) ** 2).sum(-1)  # (n, n, m)
    n = len(frac)
    origin = int(np.flatnonzero((np.abs(images) < 1e-12).all(1))[0])
    d2[np.arange(n), np.arange(n), origin] = np.inf  # an atom and itself, untranslated
    return float(np.sqrt(d2.min()))


def _image_ranges(lattice: np.ndarray) -> np.ndarray:
    """Per axis, how many translations reach every distance up to the shortest lattice vector.

    A vector of length <= r has fractional component <= r / h_k along axis k (h_k: spacing of
    the lattice planes); the wrapped difference adds at most 1/2.
    """
    r = np.linalg.norm(lattice, axis=1).min()
    volume = abs(np.linalg.det(lattice))
    cross = np.linalg.norm(np.cross(lattice[[1, 2, 0]], lattice[[2, 0, 1]]), axis=1)
    spacing = volume / cross
    return np.ceil(r / spacing + 0.5).astype(int)


def _lll_reduce(lattice: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from pymatgen.core import Lattice

    reduced = Lattice(lattice).get_lll_reduced_lattice()
    mapping = np.linalg.solve(lattice.T, reduced.matrix.T).T  # reduced = mapping @ lattice
    return reduced.matrix, frac @ np.linalg.inv(mapping)
