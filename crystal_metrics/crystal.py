"""`Crystal`: one periodic structure as plain arrays, the representation every metric consumes."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import StructureError

#: 1 amu/Å³ expressed in g/cm³.
AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660
#: A lattice whose volume is below this fraction of a*b*c is singular (coplanar vectors).
SINGULAR_TOLERANCE = 1e-6
#: Occupancies within this of 1 count as fully occupied.
OCCUPANCY_TOLERANCE = 1e-3


@lru_cache(maxsize=1)
def atomic_masses() -> np.ndarray:
    """Atomic masses (amu) indexed by atomic number, shape (119,); index 0 is NaN."""
    from pymatgen.core.periodic_table import Element

    masses = np.full(119, np.nan)
    for z in range(1, 119):
        masses[z] = float(Element.from_Z(z).atomic_mass)
    return masses


@dataclass(frozen=True, eq=False)
class Crystal:
    """A checked, ordered periodic structure.

    Attributes:
        lattice: (3, 3) float64, rows are the lattice vectors in Å.
        frac_coords: (n, 3) float64 fractional coordinates.
        numbers: (n,) int64 atomic numbers.
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray

    @classmethod
    def checked(cls, lattice, frac_coords, numbers) -> Crystal:
        """Build a Crystal, raising `StructureError` naming the problem for unusable input."""
        lattice = np.asarray(lattice, dtype=np.float64)
        frac = np.asarray(frac_coords, dtype=np.float64).reshape(-1, 3)
        numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
        if lattice.shape != (3, 3):
            raise StructureError(f"lattice has shape {lattice.shape}, expected (3, 3)")
        if len(numbers) == 0:
            raise StructureError("structure has no atoms")
        if len(numbers) != len(frac):
            raise StructureError(f"{len(numbers)} species for {len(frac)} coordinates")
        if not np.isfinite(lattice).all():
            raise StructureError("lattice has NaN or infinite entries")
        if not np.isfinite(frac).all():
            raise StructureError("coordinates contain NaN or infinite values")
        if numbers.min() < 1 or numbers.max() > 118:
            raise StructureError("unknown element (atomic number outside 1-118)")
        scale = np.prod(np.linalg.norm(lattice, axis=1))
        volume = abs(np.linalg.det(lattice))
        if scale == 0.0 or volume <= SINGULAR_TOLERANCE * scale:
            raise StructureError(f"singular lattice: cell volume {volume:.3g} Å³")
        return cls(lattice, frac, numbers)

    @classmethod
    def from_pymatgen(cls, structure) -> Crystal:
        """From a pymatgen `Structure`; a disordered site is a `StructureError`."""
        if not structure.is_ordered:
            raise StructureError("disordered site (partial occupancy or mixed species)")
        return cls.checked(structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)

    @classmethod
    def from_ase(cls, atoms) -> Crystal:
        """From an ASE `Atoms` periodic in all three directions."""
        if not all(atoms.pbc) or atoms.cell.rank < 3:
            raise StructureError("not periodic in three dimensions (ASE pbc/cell incomplete)")
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        if not np.isfinite(cell).all() or not np.isfinite(atoms.positions).all():
            raise StructureError("lattice or positions contain NaN or infinite values")
        return cls.checked(cell, atoms.get_scaled_positions(wrap=False), atoms.numbers)

    def to_pymatgen(self):
        """As a pymatgen `Structure` (coordinates as stored, not wrapped)."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), self.numbers.tolist(), self.frac_coords)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def density(self) -> float:
        """Mass density in g/cm³."""
        return float(atomic_masses()[self.numbers].sum() * AMU_PER_A3_IN_G_PER_CM3 / self.volume)

    @property
    def n_elements(self) -> int:
        """Number of distinct elements."""
        return len(np.unique(self.numbers))

    @property
    def formula(self) -> str:
        """Formula of the cell in pymatgen's element order, e.g. 'Na4Cl4' or 'SmThCN'."""
        from pymatgen.core import Composition, Element

        elements, counts = np.unique(self.numbers, return_counts=True)
        composition = Composition({Element.from_Z(int(z)): int(c) for z, c in zip(elements, counts)})
        with warnings.catch_warnings():  # noble gases have no electronegativity to sort by
            warnings.simplefilter("ignore")
            formula = composition.formula.replace(" ", "")
        return re.sub(r"(?<=[A-Za-z])1(?![0-9])", "", formula)

    def reduced_composition(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(sorted atomic numbers, counts divided by their gcd): a hashable composition key."""
        elements, counts = np.unique(self.numbers, return_counts=True)
        counts = counts // np.gcd.reduce(counts)
        return tuple(elements.tolist()), tuple(counts.tolist())
