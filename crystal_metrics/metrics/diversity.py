"""CDVAE's composition and structure diversity: the mean pairwise Euclidean distance between the
normalised Magpie composition fingerprints, and between the CrystalNN structure fingerprints, of
a set (`get_comp_diversity`, `get_struct_diversity`: `pdist(fingerprints).mean()`), over the
valid generated structures (and CDVAE's random subset of 1,000 of them); a structure whose
fingerprint fails counts as invalid there, so it is left out before the draw."""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist, pdist

from ..api import selection_summary
from ..errors import CrystalMetricsError
from ..features.cache import default_cache
from ..features.fingerprints import Fingerprints, fingerprints
from ..io import read_structures
from .selection import Selection
from .smact_check import DEFAULT_OXIDATION_STATES
from .validity import validity

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


def fingerprint_diversity(fp: Fingerprints) -> dict:
    """{"comp_div", "struct_div"} of fingerprints (CDVAE's keys): normalised composition and
    structure fingerprints' mean pairwise distances."""
    return {"comp_div": mean_pairwise_distance(fp.composition),
            "struct_div": mean_pairwise_distance(fp.structure)}


def diversity(structures, selection: Selection | None = None,
              oxidation_states: str = DEFAULT_OXIDATION_STATES, *, workers: int | None = None,
              progress: bool | None = None, cache: bool = True) -> dict:
    """CDVAE's composition and structure diversity of a set (anything `read_structures`
    accepts): the JSON fields of `crystal-metrics diversity`.

    Args:
        selection: which structures (default: every readable one; CDVAE's:
            `Selection(valid_only=True, n_samples=1000)`); with `valid_only`, structures whose
            fingerprint fails are left out before the subset is drawn, as CDVAE does.
        oxidation_states: SMACT table of the validity ('smact221', 'smact14').
        workers: processes for reading and fingerprints (default: all usable CPUs).
        cache: read and write fingerprints in the on-disk cache (shared with `coverage`).
    """
    selection = selection or Selection()
    structures = read_structures(structures, workers=workers, progress=progress)
    n = len(structures)
    if not n:
        raise CrystalMetricsError("no readable structures to score")
    result = validity(structures.crystals, oxidation_states) if selection.valid_only else None
    pool = np.flatnonzero(result.overall) if result is not None else np.arange(n)
    found = fingerprints([structures.crystals[i] for i in pool], workers, progress,
                         default_cache() if cache else None)
    fingerprinted = np.zeros(n, bool)
    fingerprinted[pool[found.indices]] = True
    keep = selection.indices(n, fingerprinted if result is not None else None)
    scored = Fingerprints(found.structure, found.composition, pool[found.indices], {}).subset(keep)
    failures = [{"name": structures.names[pool[i]], "reason": r} for i, r in found.failures.items()]
    n_candidates = int(fingerprinted.sum()) if result is not None else None
    return {**fingerprint_diversity(scored), "n_structures": n,
            **selection_summary(n, selection, len(scored.indices), result, n_candidates),
            "n_read_errors": len(structures.errors),
            "read_errors": [e.as_dict() for e in structures.errors],
            "n_fingerprint_errors": len(failures), "fingerprint_errors": failures}
