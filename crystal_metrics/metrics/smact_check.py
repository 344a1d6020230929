"""SMACT compositional validity as CDVAE's `smact_validity` computes it, over shipped SMACT tables.

A composition (reduced counts c_i of elements i) is valid when it has one element, when every
element is a SMACT metal, or when one oxidation state q_i per element (from the table) makes it
charge neutral, sum_i q_i c_i = 0, and passes SMACT's Pauling test: every cation (q > 0) is less
electronegative than every anion (q < 0).

Two tables (package data, made from the SMACT wheels by tests/data/validity/make_smact_tables.py):
- `smact221` (default): SMACT 2.2.1, which CDVAE pins and every published CDVAE/DiffCSP/FlowMM
  number used. Ir lists -2, Zr's Pauling electronegativity reads 0.33, and a missing
  electronegativity (Pm, Rn, Lr, noble gases) behaves as in CDVAE: 2.2.1 compares it before
  checking for None, the comparison raises TypeError, and CDVAE's `except TypeError` then
  passes the test. Only pairs of opposite charge are compared, so a pair of the same sign with a
  missing value fails instead, and the first such pair (elements in order of atomic number)
  decides.
- `smact14`: SMACT 4.0.2's `oxidation_states_set="smact14"` (Ir -3, Zr 1.33); a missing
  electronegativity fails the test, as in SMACT >= 2.6.

Elements without a SMACT element entry (Z > 103) have no oxidation states: their compositions
are invalid unless single-element (CDVAE's code stops with an error on them).
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import CrystalMetricsError

OXIDATION_STATE_TABLES = ("smact221", "smact14")
DEFAULT_OXIDATION_STATES = "smact221"
#: DiffCSP's and FlowMM's `smact_validity` call a composition invalid when it has more than this
#: many combinations of oxidation states; CDVAE's has no limit.
DIFFCSP_MAX_COMBINATIONS = 10 ** 7
_DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class SmactTable:
    """One SMACT release's data, by atomic number.

    Attributes:
        name: 'smact221' or 'smact14'.
        oxidation_states: allowed oxidation states; () when SMACT lists none.
        electronegativity: Pauling electronegativity, None where SMACT has none.
        metals: atomic numbers of `smact.metals`.
        missing_passes: a missing electronegativity in a pair of opposite charges passes the
            Pauling test (SMACT 2.2.1 inside CDVAE's `except TypeError`); else it fails.
    """

    name: str
    oxidation_states: dict[int, tuple[int, ...]]
    electronegativity: dict[int, float | None]
    metals: frozenset[int]
    missing_passes: bool


@cache
def smact_table(name: str = DEFAULT_OXIDATION_STATES) -> SmactTable:
    """The shipped table `name` (one of OXIDATION_STATE_TABLES)."""
    from pymatgen.core import Element

    if name not in OXIDATION_STATE_TABLES:
        raise CrystalMetricsError(f"unknown oxidation-state table {name!r}; expected one of "
                                  f"{', '.join(OXIDATION_STATE_TABLES)}")
    data = json.loads((_DATA / f"{name}.json").read_text())
    elements = {Element(symbol).Z: entry for symbol, entry in data["elements"].items()}
    return SmactTable(
        name, {z: tuple(e["oxidation_states"]) for z, e in elements.items()},
        {z: e["pauling_electronegativity"] for z, e in elements.items()},
        frozenset(Element(symbol).Z for symbol in data["metals"]),
        data["missing_electronegativity"] == "cdvae-typeerror-passes")


@cache
def smact_valid(numbers: tuple[int, ...], counts: tuple[int, ...],
                oxidation_states: str = DEFAULT_OXIDATION_STATES,
                max_combinations: int | None = None) -> bool:
    """Compositional validity of the composition with atomic numbers `numbers` (ascending,
    distinct) and reduced `counts`; `max_combinations` is DiffCSP's limit (None: CDVAE's, none).
    """
    table = smact_table(oxidation_states)
    if len(numbers) == 1 or all(z in table.metals for z in numbers):
        return True
    states = [table.oxidation_states.get(z, ()) for z in numbers]
    if max_combinations is not None and math.prod(map(len, states)) > max_combinations:
        return False
    enegs = [table.electronegativity.get(z) for z in numbers]
    if None not in enegs:
        return _neutral_with_pauling_order(states, counts, enegs)
    if not table.missing_passes:
        return False
    return any(sum(q * c for q, c in zip(combination, counts)) == 0
               and _cdvae_pauling_test(combination, enegs)
               for combination in itertools.product(*states))


def _neutral_with_pauling_order(states, counts, enegs) -> bool:
    """Whether some choice of one state per element is neutral with every cation less
    electronegative than every anion (no electronegativity missing).

    The order condition holds exactly when some cut t separates them: cations have eneg <= t,
    anions eneg > t (t = -inf or one of the electronegativities). For each cut, the reachable
    charge sums are built element by element, so the cost does not grow with the number of
    combinations (CDVAE enumerates them all).
    """
    for cut in (-math.inf, *sorted(set(enegs))):
        sums = {0}
        for element_states, count, eneg in zip(states, counts, enegs):
            allowed = [q for q in element_states if q == 0 or (q > 0) == (eneg <= cut)]
            sums = {s + q * count for s in sums for q in allowed}
        if 0 in sums:
            return True
    return False


def _cdvae_pauling_test(combination, enegs) -> bool:
    """SMACT 2.2.1's `eneg_states_test` as CDVAE calls it: pairs in order; a pair of opposite
    charges with a missing electronegativity raises TypeError, which CDVAE counts as passed; a
    pair of the same sign with a missing one fails."""
    for (q1, e1), (q2, e2) in itertools.combinations(zip(combination, enegs), 2):
        if (q1 > 0 and q2 < 0) or (q1 < 0 and q2 > 0):
            if e1 is None or e2 is None:
                return True
            if (e1 >= e2) if q1 > 0 else (e1 <= e2):
                return False
        elif e1 is None or e2 is None:
            return False
    return True
