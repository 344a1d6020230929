"""Datasets of crystals, batching by concatenation, composition parsing."""
from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import GemsDiffError


@dataclass
class Record:
    """One crystal: lattice (3,3) float64 rows in Å with det > 0, frac (n,3), numbers (n,) int64."""

    name: str
    lattice: np.ndarray
    frac: np.ndarray
    numbers: np.ndarray


@dataclass
class CrystalBatch:
    """Structures concatenated into one graph batch.

    lattice (B,3,3) Å rows; frac (N,3); z (N,) atomic numbers; batch (N,) structure index;
    n_atoms (B,).
    """

    lattice: torch.Tensor
    frac: torch.Tensor
    z: torch.Tensor
    batch: torch.Tensor
    n_atoms: torch.Tensor
    names: list = field(default_factory=list)

    def to(self, device) -> CrystalBatch:
        return CrystalBatch(self.lattice.to(device), self.frac.to(device), self.z.to(device),
                            self.batch.to(device), self.n_atoms.to(device), self.names)


def collate(records: list[Record], dtype=torch.float64) -> CrystalBatch:
    n = torch.tensor([len(r.numbers) for r in records], dtype=torch.long)
    return CrystalBatch(
        lattice=torch.tensor(np.stack([r.lattice for r in records]), dtype=dtype),
        frac=torch.tensor(np.concatenate([r.frac for r in records]), dtype=dtype),
        z=torch.tensor(np.concatenate([r.numbers for r in records]), dtype=torch.long),
        batch=torch.repeat_interleave(torch.arange(len(records)), n),
        n_atoms=n, names=[r.name for r in records])


def to_records(names: list[str], crystals: list) -> list[Record]:
    """Normalise crystals (lattice, frac, numbers): float64, right-handed (det > 0) canonical
    basis (``geometry.to_canonical_basis``, all cells in one batch), frac wrapped into [0,1)."""
    from .geometry import to_canonical_basis

    if not crystals:
        return []
    lattice = torch.tensor(np.stack([c[0] for c in crystals]), dtype=torch.float64)
    frac = [torch.as_tensor(np.asarray(c[1], dtype=np.float64)) for c in crystals]
    left = torch.linalg.det(lattice) < 0            # same crystal: (-x) @ (-L) = x @ L
    lattice[left] = -lattice[left]
    frac = [-f if flip else f for f, flip in zip(frac, left.tolist())]
    n = torch.tensor([len(f) for f in frac])
    lattice, frac_all = to_canonical_basis(lattice, torch.cat(frac),
                                           torch.repeat_interleave(torch.arange(len(n)), n))
    return [Record(name, lat.numpy(), f.numpy(), np.asarray(c[2], dtype=np.int64))
            for name, lat, f, c in zip(names, lattice, torch.split(frac_all, n.tolist()), crystals)]


def read_crystals(path):
    """(names, list of (lattice, frac, numbers), errors [(name, reason)]) from a CIF/CSV/folder.

    Uses ``crystal_metrics.io.read_structures`` (the package's shared reader).
    """
    from crystal_metrics.errors import CrystalMetricsError
    from crystal_metrics.io import read_structures

    try:
        result = read_structures(str(path), strict=False, progress=False)
    except CrystalMetricsError as exc:
        raise GemsDiffError(str(exc)) from None
    except OSError as exc:
        raise GemsDiffError(f"cannot read {path}: {exc.strerror or exc}") from None
    crystals = [(c.lattice, c.frac_coords, c.numbers) for c in result.crystals]
    return list(result.names), crystals, [(e.name, e.reason) for e in result.errors]


def load_records(path, max_atoms: int, max_z: int = 100):
    """Read and filter one dataset. Returns (records, report) with skip counts and reasons."""
    names, crystals, errors = read_crystals(path)
    keep, too_large, bad_z = [], 0, 0
    for name, crystal in zip(names, crystals):
        if len(crystal[2]) > max_atoms:
            too_large += 1
        elif int(np.max(crystal[2])) > max_z:
            bad_z += 1
        else:
            keep.append((name, crystal))
    records = to_records([k[0] for k in keep], [k[1] for k in keep])
    report = {"read": len(names) + len(errors), "used": len(records),
              "skipped_unreadable": len(errors), "skipped_too_many_atoms": too_large,
              "skipped_atomic_number": bad_z,
              "unreadable_examples": [f"{n}: {r}" for n, r in errors[:5]]}
    return records, report


def split_records(records: list[Record], val_fraction: float, seed: int):
    """Deterministic shuffle then hold out ``val_fraction`` (at least 1 if fraction > 0)."""
    idx = list(range(len(records)))
    random.Random(seed).shuffle(idx)
    n_val = 0 if val_fraction <= 0 else max(1, round(val_fraction * len(records)))
    if n_val >= len(records):
        raise GemsDiffError(f"--val-fraction {val_fraction} leaves no training structures "
                            f"out of {len(records)}")
    return [records[i] for i in idx[n_val:]], [records[i] for i in idx[:n_val]]


def load_dataset(sources: list[str], val_source: str | None, val_fraction: float, seed: int,
                 max_atoms: int, max_z: int):
    """Training and held-out records from several sources, and a report per source.

    The held-out slice (``val_fraction``, fixed by ``seed``) comes from ``val_source`` (one of
    ``sources``) only, or from all sources pooled when it is None."""
    if val_source is not None and val_source not in sources:
        raise GemsDiffError(f"--val-source {val_source} is not one of the --data paths")
    per_source, reports = {}, {}
    for path in sources:
        per_source[path], reports[path] = load_records(path, max_atoms, max_z)
    if not any(per_source.values()):
        total = {k: sum(r[k] for r in reports.values())
                 for k in ("read", "skipped_unreadable", "skipped_too_many_atoms")}
        raise GemsDiffError(f"no usable structures in {', '.join(sources)} (read "
                            f"{total['read']}, unreadable {total['skipped_unreadable']}, larger "
                            f"than --max-atoms {max_atoms}: {total['skipped_too_many_atoms']})")
    if val_source is None:
        train, val = split_records([r for p in sources for r in per_source[p]], val_fraction,
                                   seed)
    else:
        kept, val = split_records(per_source[val_source], val_fraction, seed)
        train = [r for p in sources for r in (kept if p == val_source else per_source[p])]
    return train, val, reports


def make_batches(sizes: list[int], batch_size: int, max_batch_atoms: int,
                 shuffle: bool, seed: int = 0) -> list[list[int]]:
    """Index lists: consecutive runs of <= batch_size structures and <= max_batch_atoms atoms."""
    order = list(range(len(sizes)))
    if shuffle:
        random.Random(seed).shuffle(order)
    batches, current, atoms = [], [], 0
    for i in order:
        if current and (len(current) >= batch_size or atoms + sizes[i] > max_batch_atoms):
            batches.append(current)
            current, atoms = [], 0
        current.append(i)
        atoms += sizes[i]
    if current:
        batches.append(current)
    return batches


# ----------------------------------------------------------------------------- compositions
def parse_composition(text: str, max_atoms: int | None = None) -> list[int]:
    """'LiFeO2' -> atomic numbers [3, 26, 8, 8] (the formula's exact atom counts).

    Raises GemsDiffError for unknown elements, fractional amounts or too many atoms.
    """
    from pymatgen.core import Composition, Element

    try:
        comp = Composition(text)
    except Exception:  # noqa: BLE001 - pymatgen raises several types for bad formulas
        raise GemsDiffError(f"cannot parse composition {text!r}") from None
    if len(comp) == 0:
        raise GemsDiffError(f"composition {text!r} has no atoms")
    numbers = []
    for el, amount in comp.items():
        if not isinstance(el, Element):
            raise GemsDiffError(f"cannot parse composition {text!r}: {el} is not an element")
        if abs(amount - round(amount)) > 1e-6 or round(amount) < 1:
            raise GemsDiffError(f"composition {text!r}: amount of {el} is not a positive integer")
        numbers += [int(el.Z)] * round(amount)
    dropped = sorted(set(re.findall(r"[A-Z][a-z]?", text)) - {str(el) for el in comp})
    if dropped:       # pymatgen drops elements written with amount 0 ('Li0O2' -> O2)
        raise GemsDiffError(f"composition {text!r}: amount of {dropped[0]} is 0")
    if max_atoms is not None and len(numbers) > max_atoms:
        raise GemsDiffError(f"composition {text!r} has {len(numbers)} atoms, more than "
                            f"--max-atoms {max_atoms}")
    return numbers


def formula(numbers) -> str:
    """Atomic numbers -> formula with exact counts, electronegativity order: [3,26,8,8] -> 'LiFeO2'."""
    from pymatgen.core import Element

    counts = {}
    for z in numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1

    def key(z):
        x = Element.from_Z(z).X
        return (99.0 if math.isnan(x) else x, z)   # NaN electronegativity (noble gases) last

    return "".join(Element.from_Z(z).symbol + (str(counts[z]) if counts[z] > 1 else "")
                   for z in sorted(counts, key=key))


def system_compositions(system: str, max_atoms: int) -> list[list[int]]:
    """All compositions of a chemical system 'Li-Fe-O' with every element present and at most
    max_atoms atoms, as atomic-number lists (e.g. 1140 for a ternary with 20 atoms)."""
    from pymatgen.core import Element

    symbols = [s.strip() for s in system.split("-") if s.strip()]
    if not symbols:
        raise GemsDiffError(f"cannot parse chemical system {system!r} (expected e.g. Li-Fe-O)")
    if len(set(symbols)) != len(symbols):
        raise GemsDiffError(f"chemical system {system!r} repeats an element")
    zs = []
    for s in symbols:
        if not Element.is_valid_symbol(s):
            raise GemsDiffError(f"chemical system {system!r}: {s!r} is not an element")
        zs.append(Element(s).Z)
    if max_atoms < len(zs):
        raise GemsDiffError(f"--max-atoms {max_atoms} is below the {len(zs)} elements of {system}")
    out = []
    for counts in itertools.product(range(1, max_atoms + 1), repeat=len(zs)):
        if sum(counts) <= max_atoms:
            out.append([z for z, c in zip(zs, counts) for _ in range(c)])
    return out


def pack_by_atoms(sizes: list[int], batch_atoms: int) -> list[list[int]]:
    """Consecutive index runs with <= batch_atoms atoms (a larger single structure goes alone)."""
    return make_batches(sizes, batch_size=math.inf, max_batch_atoms=batch_atoms, shuffle=False)
