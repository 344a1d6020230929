"""CDVAE's composition and structure diversity: the mean pairwise Euclidean distance between the
normalised Magpie composition fingerprints, and between the CrystalNN structure fingerprints, of
a set (`get_comp_diversity`, `get_struct_diversity`: `pdist(fingerprints).mean()`), over the
valid generated structures (and CDVAE's random subset of 1,000 of them); a structure whose
fingerprint fails counts as invalid there, so it is left out before the draw."""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist, pdist

from ..errors import CrystalMetricsError

#: Rows per block of the distance matrix (bounds memory for large sets).
BLOCK_ROWS = 1024


def mean_pairwise_distance(points: np.ndarray) -> float:
    """Mean Euclidean distance over the n (n - 1) / 2 pairs of rows of `points` (n, d), n >= 2:
    `pdist(points).mean()` for one block, else block by block (each block's own pairs, then its
    pairs with the rows after it), so memory stays at BLOCK_ROWS x n distances."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n < 2:
        raise CrystalMetricsError(f"diversity needs at least 2 fingerprinted structures, got {n}")
    total = 0.0
    for start in range(0, n, BLOCK_ROWS):
        block = points[start:start + BLOCK_ROWS]
        total += float(pdist(block).sum())
        if start + BLOCK_ROWS < n:
            total += float(cdist(block, points[start + BLOCK_ROWS:]).sum())
    return total / (n * (n - 1) / 2)


def fingerprint_diversity(fp) -> dict:
    """{"comp_div", "struct_div"} (CDVAE's keys) of `fp`, the `Fingerprints` of a set (its
    normalised `composition` (n, 132) and `structure` (n, 61) arrays): their mean pairwise
    distances."""
    return {"comp_div": mean_pairwise_distance(fp.composition),
            "struct_div": mean_pairwise_distance(fp.structure)}
