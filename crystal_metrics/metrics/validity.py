"""Structural and compositional validity in the CDVAE/DiffCSP convention.

Structural: every periodic interatomic distance (an atom to its own images included) is at
least 0.5 Å and the cell volume is at least 0.1 Å³. Compositional: SMACT charge neutrality
with the Pauling electronegativity test over SMACT's original oxidation-state list
(`oxidation_states_set="smact14"`); single elements and all-metal compositions are valid.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..crystal import Crystal
from .periodic import min_distance

MIN_DISTANCE = 0.5  # Å
MIN_VOLUME = 0.1  # Å³
OXIDATION_STATES_SET = "smact14"


def structurally_valid(crystal: Crystal) -> bool:
    """True when no two atoms (or images) are closer than 0.5 Å and the volume is >= 0.1 Å³."""
    return crystal.volume >= MIN_VOLUME and min_distance(crystal) >= MIN_DISTANCE


def compositionally_valid(crystal: Crystal) -> bool:
    """SMACT charge neutrality + Pauling test (smact14 oxidation states) of the composition."""
    return _smact_valid(*crystal.reduced_composition())


@cache
def _smact_valid(numbers: tuple[int, ...], counts: tuple[int, ...]) -> bool:
    from pymatgen.core import Composition, Element
    from smact.screening import smact_validity

    composition = Composition({Element.from_Z(z): c for z, c in zip(numbers, counts)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(smact_validity(composition, oxidation_states_set=OXIDATION_STATES_SET))


@dataclass(frozen=True)
class ValidityResult:
    """Per-structure flags (bool arrays of shape (n,)), minimum distances (Å) and summary."""

    structural: np.ndarray
    compositional: np.ndarray
    min_distance: np.ndarray

    @property
    def overall(self) -> np.ndarray:
        return self.structural & self.compositional

    @property
    def n(self) -> int:
        return len(self.structural)

    @property
    def n_valid(self) -> int:
        return int(self.overall.sum())

    def fractions(self) -> dict[str, float | None]:
        """Fractions in [0, 1] of structural, compositional and overall validity (None if empty)."""
        flags = {"structural": self.structural, "compositional": self.compositional,
                 "overall": self.overall}
        return {k: (float(v.mean()) if self.n else None) for k, v in flags.items()}


def validity(crystals) -> ValidityResult:
    """Validity of every crystal in `crystals` (a sequence of `Crystal`)."""
    crystals = list(crystals)
    distances = np.array([min_distance(c) for c in crystals], dtype=float)
    volumes = np.array([c.volume for c in crystals], dtype=float)
    structural = (distances >= MIN_DISTANCE) & (volumes >= MIN_VOLUME)
    compositional = np.array([compositionally_valid(c) for c in crystals], dtype=bool)
    return ValidityResult(structural.reshape(-1), compositional.reshape(-1), distances.reshape(-1))
