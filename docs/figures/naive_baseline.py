"""Naive baseline for docs/results.md: for every composition of a reference set, a cubic cell
whose volume is the sum of per-element volumes (Å³/atom, non-negative least squares fit on a
training set) with atoms at uniformly random fractional positions.

    python docs/figures/naive_baseline.py ../shared/data/mp_20/val.csv.gz \
        ../shared/data/mp_20/test.csv.gz runs/naive_mp20_test
"""
import argparse
import csv
from pathlib import Path

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from scipy.optimize import nnls

from crystal_metrics.io import atomic_write_text, read_structures


def element_volumes(crystals, max_z: int = 100) -> np.ndarray:
    """(max_z + 1,) Å³ per atom of each element: V_cell ≈ sum over atoms of v[Z]."""
    counts = np.zeros((len(crystals), max_z + 1))
    for row, c in zip(counts, crystals):
        np.add.at(row, c.numbers, 1)
    volumes = np.array([abs(np.linalg.det(c.lattice)) for c in crystals])
    used = counts.any(0)
    v = np.zeros(max_z + 1)
    v[used] = nnls(counts[:, used], volumes)[0]
    v[~used | (v <= 0)] = np.median(v[used & (v > 0)])   # unseen elements: a typical volume
    return v


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train")
    parser.add_argument("reference")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    volumes = element_volumes(read_structures(args.train, progress=False).crystals)
    ref = read_structures(args.reference, progress=False)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=False)
    rows = []
    for name, crystal in zip(ref.names, ref.crystals):
        side = volumes[crystal.numbers].sum() ** (1 / 3)
        frac = rng.random((len(crystal.numbers), 3))
        structure = Structure(Lattice.cubic(side), crystal.numbers.tolist(), frac)
        atomic_write_text(args.out / f"{name}_0.cif", str(CifWriter(structure)))
        rows.append({"name": f"{name}_0", "composition": structure.composition.formula.replace(" ", ""),
                     "source_id": name, "seed": args.seed})
    with open(args.out / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} structures to {args.out}")


if __name__ == "__main__":
    main()
