"""Structural and compositional validity in the CDVAE/DiffCSP convention.

Structural: every periodic interatomic distance (an atom to its own images included) is at
least 0.5 Å and the cell volume is at least 0.1 Å³. Compositional: SMACT charge neutrality
with the Pauling electronegativity test as CDVAE's `smact_validity` computes it, over the
oxidation states of SMACT 2.2.1 (CDVAE's pin, the default) or SMACT 4's `smact14`
(`smact_check.py`); single elements and all-metal compositions are valid.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crystal import Crystal
from .periodic import min_distance, min_distances
from .smact_check import DEFAULT_OXIDATION_STATES, smact_table, smact_valid

MIN_DISTANCE = 0.5  # Å
MIN_VOLUME = 0.1  # Å³


def structurally_valid(crystal: Crystal) -> bool:
    """True when no two atoms (or images) are closer than 0.5 Å and the volume is >= 0.1 Å³."""
    return crystal.volume >= MIN_VOLUME and min_distance(crystal) >= MIN_DISTANCE


def compositionally_valid(crystal: Crystal, oxidation_states: str = DEFAULT_OXIDATION_STATES,
                          max_combinations: int | None = None) -> bool:
    """SMACT charge neutrality + Pauling test of the composition, over the oxidation states of
    `oxidation_states` ('smact221' or 'smact14'); `max_combinations`: DiffCSP's limit."""
    return smact_valid(*crystal.reduced_composition(), oxidation_states, max_combinations)


@dataclass(frozen=True)
class ValidityResult:
    """Per-structure flags (bool arrays of shape (n,)), minimum distances (Å) and summary;
    `oxidation_states` names the SMACT table of the compositional flags."""

    structural: np.ndarray
    compositional: np.ndarray
    min_distance: np.ndarray
    oxidation_states: str = DEFAULT_OXIDATION_STATES

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


def validity(crystals, oxidation_states: str = DEFAULT_OXIDATION_STATES,
             max_combinations: int | None = None) -> ValidityResult:
    """Validity of every crystal in `crystals` (a sequence of `Crystal`); `oxidation_states` and
    `max_combinations` as in `compositionally_valid`."""
    smact_table(oxidation_states)  # an unknown table name fails here, also for an empty set
    crystals = list(crystals)
    distances = min_distances(crystals)
    volumes = np.array([c.volume for c in crystals], dtype=float)
    structural = (distances >= MIN_DISTANCE) & (volumes >= MIN_VOLUME)
    compositional = np.array([compositionally_valid(c, oxidation_states, max_combinations)
                              for c in crystals], dtype=bool)
    return ValidityResult(structural.reshape(-1), compositional.reshape(-1),
                          distances.reshape(-1), oxidation_states)
