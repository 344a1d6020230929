"""Shortest interatomic distance in a periodic crystal, an atom's own images included."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..crystal import Crystal

#: Above this many lattice images the cell is LLL-reduced first (same lattice, fewer images).
MAX_IMAGES = 343


def min_distance(crystal: Crystal) -> float:
    """Smallest distance (Å) between any two atoms or an atom and any periodic image of itself.

    Exact: every lattice translation that could give a distance up to the shortest lattice
    vector is searched, after LLL reduction when the cell is very skewed. Memory and time grow
    linearly with the number of atoms: one nearest-neighbour query of a k-d tree of the cell's
    atoms with the atoms moved by each of those translations (at most MAX_IMAGES // 2 + 1
    copies of the cell).
    """
    lattice, frac = crystal.lattice, _wrap(crystal.frac_coords)
    ranges = _image_ranges(lattice)
    if np.prod(2 * ranges + 1) > MAX_IMAGES:
        lattice, frac = _lll_reduce(lattice, frac)
        ranges = _image_ranges(lattice)
    cart = frac @ lattice
    # Points: the cell, then its copies under half of the translations (T and -T give the same
    # distances with the two atoms swapped). The nearest atom to an untranslated atom is itself
    # (0 Å), so there the second nearest counts; no distance exceeds the shortest lattice vector.
    points = (cart[None] + np.vstack([np.zeros((1, 3)), _half_images(ranges) @ lattice])[:, None])
    bound = np.linalg.norm(lattice, axis=1).min() * (1 + 1e-9)
    distances = cKDTree(cart).query(points.reshape(-1, 3), k=2, distance_upper_bound=bound)[0]
    n = len(cart)
    return float(min(distances[:n, 1].min(initial=np.inf), distances[n:, 0].min()))


def min_distances(crystals) -> np.ndarray:
    """(n,) float64: `min_distance` (Å) of each of `crystals`."""
    return np.array([min_distance(c) for c in crystals], dtype=float)


def _wrap(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates in [0, 1) (np.mod can round a tiny negative value up to 1.0)."""
    frac = np.mod(frac, 1.0)
    frac[frac >= 1.0] = 0.0
    return frac


def _image_ranges(lattice: np.ndarray) -> np.ndarray:
    """Per axis, how many translations reach every distance up to the shortest lattice vector.

    A vector of length <= r has fractional component <= r / h_k along axis k (h_k: spacing of
    the lattice planes); two coordinates in [0, 1) differ by less than 1, so translations
    |n_k| <= ceil(r / h_k) suffice (rounding error of the ratio allowed for).
    """
    r = np.linalg.norm(lattice, axis=1).min()
    volume = abs(np.linalg.det(lattice))
    cross = np.linalg.norm(np.cross(lattice[[1, 2, 0]], lattice[[2, 0, 1]]), axis=1)
    spacing = volume / cross
    return np.ceil(r / spacing * (1 - 1e-12)).astype(int)


def _half_images(ranges: np.ndarray) -> np.ndarray:
    """Integer translations n with |n_k| <= ranges[k] that are lexicographically positive, (m, 3)."""
    axes = [np.arange(-r, r + 1) for r in ranges]
    images = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    first = np.argmax(images != 0, axis=1)  # first non-zero component (0 for the origin)
    positive = images[np.arange(len(images)), first] > 0
    return images[positive].astype(float)


def _lll_reduce(lattice: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from pymatgen.core import Lattice

    reduced = Lattice(lattice).get_lll_reduced_lattice()
    mapping = np.linalg.solve(lattice.T, reduced.matrix.T).T  # reduced = mapping @ lattice
    return reduced.matrix, _wrap(frac @ np.linalg.inv(mapping))
