"""Pair generated structures with the reference structure each one predicts (CSP evaluation).

By id: every generated structure names its reference, through `source_ids` (gemsdiff-sample's
manifest.csv: name -> source_id, the reference's `material_id`) or, without them, through its own
name. Several samples may name one reference (best-of-k); a reference no sample names has k = 0.
By order: the i-th generated structure predicts the i-th reference; both sets must be fully
readable and of the same size, since an unreadable structure would shift the pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PairingError
from ..io import StructureSet

PAIR_BY = ("auto", "id", "order")
MAX_NAMES_SHOWN = 3


@dataclass(frozen=True)
class Pairing:
    """Generated samples and their references, grouped by reference in REF order.

    Attributes:
        by: "id" or "order".
        names: (m,) names of the generated samples.
        gen_index: (m,) int64 index into the generated crystals, -1 for an unreadable sample.
        ref_index: (m,) int64 index into the reference crystals.
        n_ref: number of references.
    """

    by: str
    names: list[str]
    gen_index: np.ndarray
    ref_index: np.ndarray
    n_ref: int

    @property
    def k(self) -> np.ndarray:
        """Samples per reference, shape (n_ref,)."""
        return np.bincount(self.ref_index, minlength=self.n_ref)


def pair_structures(gen: StructureSet, ref: StructureSet, by: str = "auto",
                    source_ids: dict[str, str] | None = None) -> Pairing:
    """Pair `gen` with `ref`; `by="auto"` pairs by id when `source_ids` are given, else by order.

    Raises `PairingError` naming the structure or the counts that make pairing impossible.
    """
    if by not in PAIR_BY:
        raise ValueError(f"by must be one of {PAIR_BY}, got {by!r}")
    if by == "order" or (by == "auto" and source_ids is None):
        return _by_order(gen, ref)
    return _by_id(gen, ref, source_ids)


def _by_order(gen: StructureSet, ref: StructureSet) -> Pairing:
    unreadable = [f"GEN {e.name}" for e in gen.errors] + [f"REF {e.name}" for e in ref.errors]
    if unreadable:
        raise PairingError(f"pairing by order needs every structure readable, but "
                           f"{_some(unreadable)} cannot be read; pair by id instead")
    if len(gen) != len(ref):
        raise PairingError(f"pairing by order needs one generated structure per reference: "
                           f"{len(gen)} generated, {len(ref)} references")
    order = np.arange(len(gen))
    return Pairing("order", list(gen.names), order, order.copy(), len(ref))


def _by_id(gen: StructureSet, ref: StructureSet, source_ids: dict[str, str] | None) -> Pairing:
    readable = {name: i for i, name in enumerate(gen.names)}
    unreadable = {e.name for e in gen.errors}
    if source_ids is None:
        source_ids = {name: name for name in [*gen.names, *unreadable]}
    else:
        missing = [name for name in source_ids if name not in readable and name not in unreadable]
        if missing:
            raise PairingError(f"manifest.csv lists {_some(missing)}, missing from GEN")
        unlisted = [name for name in gen.names if name not in source_ids]
        if unlisted:
            raise PairingError(f"GEN structure {_some(unlisted)} not listed in manifest.csv")
    refs = {name: i for i, name in enumerate(ref.names)}
    ref_unreadable = {e.name for e in ref.errors}
    unknown = [f"{name} (source_id {source!r})" for name, source in source_ids.items()
               if name in readable and source not in refs and source not in ref_unreadable]
    if unknown:
        raise PairingError(f"no reference of that name in REF for {_some(unknown)}")
    # Samples of an unreadable reference are left out with it (both are reported as read
    # errors), as are unreadable entries naming no reference (such as a whole corrupt file).
    pairs = sorted((refs[source], order, name) for order, (name, source)
                   in enumerate(source_ids.items()) if source in refs)
    return Pairing("id", [name for _, _, name in pairs],
                   np.array([readable.get(name, -1) for _, _, name in pairs], dtype=np.int64),
                   np.array([r for r, _, _ in pairs], dtype=np.int64), len(ref))


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown + (f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN
                    else "")
