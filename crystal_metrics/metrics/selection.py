"""Which generated structures the distribution metrics score (CDVAE's `GenEval` filtering).

CDVAE computes its density, element-count and property EMDs and its diversities over the valid
generated structures only, and over a random subset of `n_samples` = 1,000 of them:
`np.random.choice(len(valid), n_samples, replace=False)` on numpy's global random state, an
exception when fewer are valid. `Selection` reproduces that draw with `seed` (the indices CDVAE
draws after `np.random.seed(seed)`); the GemsDiff paper scores every generated structure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CrystalMetricsError, SubsetSizeError
from ..io import StructureSet
from .smact_check import DEFAULT_OXIDATION_STATES
from .validity import ValidityResult, validity


@dataclass(frozen=True)
class Selection:
    """All readable structures, or only the valid ones (`valid_only`), then optionally a random
    subset of `n_samples` of those (CDVAE's draw with numpy's legacy generator seeded `seed`)."""

    valid_only: bool = False
    n_samples: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.n_samples is not None and self.n_samples < 1:
            raise CrystalMetricsError(f"n_samples must be at least 1, not {self.n_samples}")

    def indices(self, n: int, valid: np.ndarray | None = None) -> np.ndarray:
        """Positions (ascending) of the scored structures among `n`; `valid`: (n,) bool flags,
        needed with `valid_only`."""
        if not self.valid_only:
            candidates = np.arange(n)
        elif valid is None:
            raise CrystalMetricsError("valid-only scoring needs the structures themselves to check "
                                      "validity; a statistics file has none")
        else:
            candidates = np.flatnonzero(np.asarray(valid, bool))
            if not len(candidates):
                raise CrystalMetricsError(f"GEN has no valid structure to score (of {n} readable)")
        if self.n_samples is None:
            return candidates
        if len(candidates) < self.n_samples:
            kind = "valid" if self.valid_only else "readable"
            plural = "" if len(candidates) == 1 else "s"
            raise SubsetSizeError(f"GEN has {len(candidates)} {kind} structure{plural}, "
                                        f"fewer than the {self.n_samples} asked for (--n-samples)")
        drawn = np.random.RandomState(self.seed).choice(len(candidates), self.n_samples,
                                                        replace=False)
        return np.sort(candidates[drawn])

    def as_dict(self) -> dict:
        """JSON fields: `valid_only`, `n_samples` (None: all) and `seed` (None without subset)."""
        return {"valid_only": self.valid_only, "n_samples": self.n_samples,
                "seed": None if self.n_samples is None else self.seed}

    def describe(self, n_scored: int, n_readable: int, n_valid: int | None = None) -> str:
        """One line naming what was scored, e.g. '1000 drawn at random (seed 0) from the 8244
        valid of 9046 readable'."""
        if self.valid_only:
            pool = f"the {n_valid} valid of {n_readable} readable"
        else:
            pool = f"all {n_readable} readable"
        if self.n_samples is None:
            return pool
        return f"{n_scored} drawn at random (seed {self.seed}) from {pool}"


def scored_structures(structures: StructureSet, selection: Selection,
                      oxidation_states: str = DEFAULT_OXIDATION_STATES
                      ) -> tuple[StructureSet, ValidityResult | None]:
    """The structures `selection` keeps (read errors kept) and, with `valid_only`, the validity
    (over `oxidation_states`) they were filtered by."""
    result = validity(structures.crystals, oxidation_states) if selection.valid_only else None
    keep = selection.indices(len(structures), None if result is None else result.overall)
    return structures.subset(keep), result
