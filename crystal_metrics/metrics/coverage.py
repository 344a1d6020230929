"""Coverage COV-R (recall) and COV-P (precision) of CDVAE (Xie et al. 2022).

Each structure has a structure and a composition fingerprint (`features.fingerprints`). A
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
from ..failures import gen_ref_records
from ..features.cache import default_cache
from ..features.fingerprints import fingerprints
from ..io import read_structures
from .smact_check import DEFAULT_OXIDATION_STATES
from .validity import validity

#: CDVAE's (structure, composition) cutoffs per dataset.
CUTOFFS = {"mp20": (0.4, 10.0), "perov5": (0.2, 4.0), "carbon24": (0.2, 4.0)}
#: Generated fingerprints per block of a distance matrix (bounds memory on large sets).
BLOCK_ROWS = 2048


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


def coverage(gen, ref, *, dataset: str = "mp20", struct_cutoff: float | None = None,
             comp_cutoff: float | None = None, valid_only: bool = False,
             oxidation_states: str = DEFAULT_OXIDATION_STATES, workers: int | None = None,
             progress: bool | None = None, cache: bool = True) -> dict:
    """COV-R and COV-P of GEN against REF (anything `read_structures` accepts): the JSON fields of
    `crystal-metrics coverage`.

    Args:
        dataset: CDVAE cutoff preset, a key of `CUTOFFS`.
        struct_cutoff, comp_cutoff: override the preset's cutoffs.
        valid_only: fingerprint and count only the valid generated structures (CDVAE counts all).
        oxidation_states: SMACT table of that validity ('smact221', 'smact14').
        workers: processes for reading and fingerprinting (default: all usable CPUs).
        cache: read and write the fingerprints in the on-disk cache (`embeddings.sqlite` in the
            crystal-metrics cache folder), so that a reference is fingerprinted once.
    """
    if dataset not in CUTOFFS:
        raise CrystalMetricsError(f"unknown dataset {dataset!r}; expected one of {sorted(CUTOFFS)}")
    preset = CUTOFFS[dataset]
    struct_cutoff = preset[0] if struct_cutoff is None else struct_cutoff
    comp_cutoff = preset[1] if comp_cutoff is None else comp_cutoff
    gen_set = read_structures(gen, workers=workers, progress=progress)
    ref_set = read_structures(ref, workers=workers, progress=progress)
    gen_names, gen_crystals = gen_set.names, gen_set.crystals
    if valid_only and gen_crystals:
        keep = np.flatnonzero(validity(gen_crystals, oxidation_states).overall)
        gen_names, gen_crystals = [gen_names[i] for i in keep], [gen_crystals[i] for i in keep]
    for label, crystals in (("GEN", gen_crystals), ("REF", ref_set.crystals)):
        if not crystals:
            kind = "valid" if label == "GEN" and valid_only else "readable"
            raise CrystalMetricsError(f"{label} has no {kind} structures to score")
    store = default_cache() if cache else None
    gen_fp = fingerprints(gen_crystals, workers, progress, store)
    ref_fp = fingerprints(ref_set.crystals, workers, progress, store)
    fingerprint_errors = (
        [{"name": f"gen:{gen_names[i]}", "reason": r} for i, r in gen_fp.failures.items()]
        + [{"name": f"ref:{ref_set.names[i]}", "reason": r} for i, r in ref_fp.failures.items()])
    for label, fp in (("GEN", gen_fp), ("REF", ref_fp)):
        if not len(fp.indices):
            raise CrystalMetricsError(f"no structure of {label} could be fingerprinted "
                                      f"({next(iter(fp.failures.values()))})")
    scores = coverage_scores(gen_fp.structure, gen_fp.composition, ref_fp.structure,
                             ref_fp.composition, struct_cutoff, comp_cutoff, len(gen_crystals))
    read_errors = gen_ref_records(gen_set.errors, ref_set.errors)
    return {**scores, "dataset": dataset, "struct_cutoff": struct_cutoff,
            "comp_cutoff": comp_cutoff, "valid_only": valid_only,
            "oxidation_states": oxidation_states, "n_gen": len(gen_crystals),
            "n_ref": len(ref_fp.indices), "n_read_errors": len(read_errors),
            "read_errors": read_errors, "n_fingerprint_errors": len(fingerprint_errors),
            "fingerprint_errors": fingerprint_errors}
