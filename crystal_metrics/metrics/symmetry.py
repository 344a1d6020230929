"""Space-group and crystal-system distributions of structure sets, and how far two sets differ.

Each structure's international space-group number comes from spglib through pymatgen's
`SpacegroupAnalyzer(structure, symprec, angle_tolerance)` (`features/space_groups.py`; the
default tolerances, 0.1 Å and 5°, are here: generated structures are rarely exact, and 0.1 Å is
the usual tolerance for them; pymatgen's own default 0.01 Å finds P1 for most of them). The
crystal system follows from the number (1-2 triclinic, 3-15 monoclinic, 16-74 orthorhombic,
75-142 tetragonal, 143-167 trigonal, 168-194 hexagonal, 195-230 cubic). Two sets are compared by the total variation distance of their distributions,
TV = 1/2 sum_k |p_k - q_k| in [0, 1] (the largest difference in the share of any group of
classes), over the 7 crystal systems and over the 230 space groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CrystalMetricsError

SYMPREC = 0.1  # Å
ANGLE_TOLERANCE = 5.0  # degrees
CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal",
                   "hexagonal", "cubic")
#: Highest space-group number of each crystal system.
_LAST_NUMBER = np.array([2, 15, 74, 142, 167, 194, 230])


def crystal_system(number: int) -> str:
    """Crystal system of the space group `number` (1-230)."""
    if not 1 <= number <= 230:
        raise CrystalMetricsError(f"no space group number {number}")
    return CRYSTAL_SYSTEMS[int(np.searchsorted(_LAST_NUMBER, number))]


@dataclass(frozen=True)
class SpaceGroups:
    """Space-group numbers of a set.

    Attributes:
        numbers: (m,) int space-group numbers of the structures where spglib succeeded.
        indices: (m,) their positions in the input list.
        failures: {position in the input list: reason} of the others.
        symprec, angle_tolerance: the tolerances (Å, degrees).
    """

    numbers: np.ndarray
    indices: np.ndarray
    failures: dict[int, str]
    symprec: float = SYMPREC
    angle_tolerance: float = ANGLE_TOLERANCE

    def space_group_fractions(self) -> np.ndarray:
        """(230,) fraction of structures in space groups 1..230 (zeros for an empty set)."""
        counts = np.bincount(self.numbers, minlength=231)[1:].astype(float)
        return counts / max(len(self.numbers), 1)

    def crystal_system_fractions(self) -> np.ndarray:
        """(7,) fraction of structures in each of CRYSTAL_SYSTEMS."""
        systems = np.searchsorted(_LAST_NUMBER, self.numbers)
        return np.bincount(systems, minlength=7).astype(float) / max(len(self.numbers), 1)

    def summary(self) -> dict:
        """JSON fields: `n`, `n_errors`, `crystal_systems` {name: fraction} and `space_groups`
        {number: fraction} (groups present only, by decreasing fraction)."""
        groups = self.space_group_fractions()
        order = np.argsort(-groups, kind="stable")
        return {"n": len(self.numbers), "n_errors": len(self.failures),
                "crystal_systems": dict(zip(CRYSTAL_SYSTEMS,
                                            self.crystal_system_fractions().tolist())),
                "space_groups": {str(k + 1): float(groups[k]) for k in order if groups[k] > 0}}


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance 1/2 sum |p - q| between two distributions over the same classes."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def space_group_comparison(gen: SpaceGroups, ref: SpaceGroups) -> dict:
    """JSON fields comparing GEN with REF: `crystal_system_tv`, `space_group_tv` (None when a
    side has no space group)."""
    if not len(gen.numbers) or not len(ref.numbers):
        return {"crystal_system_tv": None, "space_group_tv": None}
    return {"crystal_system_tv": total_variation(gen.crystal_system_fractions(),
                                                 ref.crystal_system_fractions()),
            "space_group_tv": total_variation(gen.space_group_fractions(),
                                              ref.space_group_fractions())}
