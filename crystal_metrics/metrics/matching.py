"""Match rate and RMSE of crystal structure prediction (CSP), as DiffCSP, FlowMM and EquiCSP
report them on MP-20.

A generated sample matches its reference when pymatgen's `StructureMatcher(stol=0.5,
angle_tol=10, ltol=0.3)` (otherwise pymatgen's defaults: primitive cells, volumes scaled to each
other, no supercells) finds them equivalent. Its RMS distance is the first value of
`get_rms_dist(sample, reference)`: the root-mean-square displacement of the sites after the best
lattice mapping and translation, divided by (V/n)^(1/3), the length per site of the primitive
cell (dimensionless). Only valid samples (structural and compositional validity, see
validity.py) are compared: an invalid one is unmatched, as in DiffCSP's evaluation, and so is a
pair on which pymatgen raises (reported). With k samples per reference (best-of-k), a reference
is matched when any of its samples matches, with the smallest RMS distance among them.
Match rate = matched references / references; RMSE = mean RMS distance over matched references.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..crystal import Crystal
from ..failures import StructureFailure
from ..io import StructureSet
from ..parallel import parallel_map
from .pairing import Pairing, pair_structures
from .validity import validity

TOLERANCES = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}
#: Below this many pairs, matching stays in this process (a pool costs more than it saves).
PARALLEL_MIN_PAIRS = 32


@dataclass(frozen=True)
class MatchResult:
    """Best-of-k matching of every reference.

    Attributes:
        pairing: the generated samples of every reference.
        ref_names: (n_ref,) reference names.
        valid: (m,) bool, per sample of `pairing`: readable and valid.
        sample_rms: (m,) float64 normalised RMS distance per sample, NaN when unmatched.
        n_gen: number of readable generated structures.
        errors: samples on which pymatgen raised (counted unmatched), named after the sample.
    """

    pairing: Pairing
    ref_names: list[str]
    valid: np.ndarray
    sample_rms: np.ndarray
    n_gen: int
    errors: list[StructureFailure]

    @property
    def rms(self) -> np.ndarray:
        """(n_ref,) smallest RMS distance among the matching samples, NaN when none matches."""
        best = np.full(self.pairing.n_ref, np.nan)
        np.fmin.at(best, self.pairing.ref_index, self.sample_rms)
        return best

    @property
    def matched(self) -> np.ndarray:
        """(n_ref,) bool: some sample matches the reference."""
        return ~np.isnan(self.rms)

    @property
    def match_rate(self) -> float | None:
        """Matched references / references, in [0, 1] (None without references)."""
        return float(self.matched.mean()) if self.pairing.n_ref else None

    @property
    def rmse(self) -> float | None:
        """Mean normalised RMS distance over the matched references (None when none matches)."""
        rms = self.rms[self.matched]
        return float(rms.mean()) if len(rms) else None

    @property
    def n_invalid(self) -> int:
        """Readable samples that fail validity."""
        return int(((self.pairing.gen_index >= 0) & ~self.valid).sum())

    def k_summary(self) -> int | dict[str, int]:
        """Samples per reference: one number, or {min, max} when it varies."""
        k = self.pairing.k
        low, high = (int(k.min()), int(k.max())) if len(k) else (0, 0)
        return low if low == high else {"min": low, "max": high}

    def summary(self) -> dict:
        """The JSON fields of `crystal-metrics match`, read errors aside."""
        return {
            "match_rate": self.match_rate,
            "rmse": self.rmse,
            "n_ref": self.pairing.n_ref,
            "n_gen": self.n_gen,
            "n_matched": int(self.matched.sum()),
            "k": self.k_summary(),
            "pair_by": self.pairing.by,
            "n_invalid_predictions": self.n_invalid,
            "match_errors": [e.as_dict() for e in self.errors],
            "tolerances": dict(TOLERANCES),
        }


def match_structures(gen: StructureSet, ref: StructureSet, *, pair_by: str = "auto",
                     source_ids: dict[str, str] | None = None, workers: int | None = None,
                     progress: bool | None = None) -> MatchResult:
    """Match every generated sample against its reference (pairing: see pairing.py).

    Args:
        pair_by: "auto" (by id when `source_ids` are given, else by order), "id" or "order".
        source_ids: generated name -> reference name, as read from manifest.csv.
        workers: processes (default: all usable CPUs); serial below `PARALLEL_MIN_PAIRS` pairs.
        progress: show a progress bar (default: only on a terminal).
    """
    pairing = pair_structures(gen, ref, pair_by, source_ids)
    flags = validity(gen.crystals).overall
    valid = np.array([i >= 0 and bool(flags[i]) for i in pairing.gen_index], dtype=bool)
    todo = np.flatnonzero(valid)
    pairs = [(gen.crystals[pairing.gen_index[j]], ref.crystals[pairing.ref_index[j]]) for j in todo]
    results = parallel_map(rms_distance, pairs, workers=workers, min_items=PARALLEL_MIN_PAIRS,
                           progress=progress, desc="matching", unit="pair")
    sample_rms = np.full(len(pairing.names), np.nan)
    errors = []
    for j, result in zip(todo, results):
        if isinstance(result, str):
            errors.append(StructureFailure(pairing.names[j], result))
        else:
            sample_rms[j] = result
    return MatchResult(pairing, list(ref.names), valid, sample_rms, len(gen), errors)


def rms_distance(pair: tuple[Crystal, Crystal]) -> float | str:
    """Normalised RMS distance of (generated, reference), NaN when they do not match, or the
    reason when pymatgen raises."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    generated, reference = pair
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = StructureMatcher(**TOLERANCES).get_rms_dist(generated.to_pymatgen(),
                                                                 reference.to_pymatgen())
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types on degenerate cells
        return f"StructureMatcher failed: {type(exc).__name__}: {exc}"
    return np.nan if result is None else float(result[0])
