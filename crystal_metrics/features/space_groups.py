"""Space-group number of each structure (spglib through pymatgen's `SpacegroupAnalyzer`), through
the per-structure cache; the distributions and distances are in `metrics/symmetry.py`."""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np

from ..crystal import Crystal
from ..errors import CrystalMetricsError
from ..metrics.symmetry import ANGLE_TOLERANCE, SYMPREC, SpaceGroups
from .cache import StructureCache, cached_map

#: Below this many structures, space groups are found in this process.
PARALLEL_MIN_STRUCTURES = 64
#: First field of `cache_key()`, telling space groups from embeddings in the cache.
CACHE_KIND = "space-group"


def _space_group_one(crystal: Crystal, symprec: float, angle_tolerance: float) -> np.ndarray | str:
    """[space-group number] as a float64 vector (what the cache stores), or why spglib failed."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=symprec,
                                          angle_tolerance=angle_tolerance)
            return np.array([analyzer.get_space_group_number()], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - spglib fails in several ways on degenerate cells
        first_line = str(exc).strip().splitlines()[:1]
        return ": ".join(["symmetry search failed", type(exc).__name__, *first_line])


@contextmanager
def _quiet_spglib():
    """spglib's C library prints its internal retries ('spglib: ... failed.') to stderr unless
    SPGLIB_WARNING=OFF, read at each call; a value the user set is left alone."""
    if "SPGLIB_WARNING" in os.environ:
        yield
        return
    os.environ["SPGLIB_WARNING"] = "OFF"
    try:
        yield
    finally:
        os.environ.pop("SPGLIB_WARNING", None)


def cache_key(symprec: float, angle_tolerance: float) -> str:
    """Cache key of the space-group numbers: spglib version and tolerances."""
    import spglib

    return (f"{CACHE_KIND}:spglib-{spglib.__version__}:symprec-{symprec:g}:"
            f"angle-{angle_tolerance:g}")


def space_groups(crystals: list[Crystal], symprec: float = SYMPREC,
                 angle_tolerance: float = ANGLE_TOLERANCE, workers: int | None = None,
                 progress: bool | None = None, cache: StructureCache | None = None) -> SpaceGroups:
    """Space-group numbers of `crystals` (spglib through pymatgen), in `workers` forked
    processes; with `cache`, numbers found there are not computed again."""
    if symprec <= 0 or angle_tolerance <= 0:
        raise CrystalMetricsError("symprec and angle_tolerance must be positive")
    with _quiet_spglib():
        results = cached_map(partial(_space_group_one, symprec=symprec,
                                     angle_tolerance=angle_tolerance),
                             crystals, cache_key(symprec, angle_tolerance), cache,
                             workers=workers, progress=progress, desc="space groups",
                             min_parallel=PARALLEL_MIN_STRUCTURES)
    indices = [i for i, r in enumerate(results) if not isinstance(r, str)]
    numbers = np.array([int(results[i][0]) for i in indices], dtype=int)
    return SpaceGroups(numbers, np.array(indices, int),
                       {i: r for i, r in enumerate(results) if isinstance(r, str)},
                       symprec, angle_tolerance)
