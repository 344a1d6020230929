"""Coverage COV-R (recall) and COV-P (precision) of CDVAE (Xie et al. 2022).

Each structure has a structure and a composition fingerprint (`features/fingerprints.py`). A
reference structure counts for COV-R when its nearest generated structure fingerprint lies within
the structure cutoff *and* its nearest generated composition fingerprint within the composition
cutoff (Euclidean distances; the two nearest need not be the same structure, as in CDVAE's
`compute_cov`); COV-P is the same from the generated side. As in CDVAE, every readable generated
structure counts, not only the valid ones (`valid_only` restricts to those), and one whose
fingerprint fails counts as not covered.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import CrystalMetricsError

#: CDVAE's (structure, composition) cutoffs per dataset.
CUTOFFS = {"mp20": (0.4, 10.0), "perov5": (0.2, 4.0), "carbon24": (0.2, 4.0)}
#: Generated fingerprints per block of a distance matrix (bounds memory on large sets).
BLOCK_ROWS = 2048


def cutoffs(dataset: str, struct_cutoff: float | None = None,
            comp_cutoff: float | None = None) -> tuple[float, float]:
    """(structure, composition) cutoffs: `dataset`'s in CUTOFFS, unless given."""
    if dataset not in CUTOFFS:
        raise CrystalMetricsError(f"unknown dataset {dataset!r}; expected one of {sorted(CUTOFFS)}")
    preset = CUTOFFS[dataset]
    return (preset[0] if struct_cutoff is None else struct_cutoff,
            preset[1] if comp_cutoff is None else comp_cutoff)


def nearest_distances(gen: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each gen row (n, d) to its nearest ref row (m, d), shape (n,), and
    from each ref row to its nearest gen row, shape (m,): the full distance matrix, in blocks."""
    to_ref, to_gen = np.empty(len(gen)), np.full(len(ref), np.inf)
    for start in range(0, len(gen), BLOCK_ROWS):
        block = cdist(gen[start:start + BLOCK_ROWS], ref)
        to_ref[start:start + BLOCK_ROWS] = block.min(axis=1)
        np.minimum(to_gen, block.min(axis=0), out=to_gen)
    return to_ref, to_gen


def coverage_scores(gen_structure: np.ndarray, gen_composition: np.ndarray,
                    ref_structure: np.ndarray, ref_composition: np.ndarray, struct_cutoff: float,
                    comp_cutoff: float, n_gen: int | None = None) -> dict:
    """{"cov_recall", "cov_precision"} from fingerprints: gen (n, d_s) and (n, d_c), ref (m, d_s)
    and (m, d_c). `n_gen` (≥ n, default n) is the COV-P denominator: generated structures whose
    fingerprint failed count there as not covered."""
    if not len(gen_structure) or not len(ref_structure):
        raise CrystalMetricsError("coverage needs at least one fingerprint in each set")
    gen_struct_dist, ref_struct_dist = nearest_distances(gen_structure, ref_structure)
    gen_comp_dist, ref_comp_dist = nearest_distances(gen_composition, ref_composition)
    recalled = (ref_struct_dist <= struct_cutoff) & (ref_comp_dist <= comp_cutoff)
    precise = (gen_struct_dist <= struct_cutoff) & (gen_comp_dist <= comp_cutoff)
    n_gen = len(gen_structure) if n_gen is None else n_gen
    return {"cov_recall": float(recalled.mean()), "cov_precision": float(precise.sum() / n_gen)}
