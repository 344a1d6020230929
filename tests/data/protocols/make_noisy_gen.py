"""A small generated-like set and a reference for the CDVAE GenEval golden (run by hand, in the
project venv), as CDVAE-style CSVs. GEN: the example structures 10 to 29 (one of them, mp-21383,
not charge balanced) with Gaussian noise on every Cartesian coordinate, SIGMA Å on the even ones
(some become structurally invalid) and SIGMA / 20 on the odd ones. REF: the examples 0 to 9 and
the odd ones of 10 to 29, unchanged (so that coverage is not trivially 0).

    python tests/data/protocols/make_noisy_gen.py examples/mp20_test 1.2 5 \
        tests/data/protocols/gen_noisy.csv tests/data/protocols/ref.csv
"""
import csv
import sys

import numpy as np
from pymatgen.io.cif import CifWriter

from crystal_metrics import Crystal, read_structures


def write(path: str, names, crystals) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["material_id", "cif"])
        for name, crystal in zip(names, crystals):
            writer.writerow([name, str(CifWriter(crystal.to_pymatgen()))])


def main():
    source, sigma, seed, gen_out, ref_out = sys.argv[1:]
    structures = read_structures(source)
    rng = np.random.default_rng(int(seed))
    gen = range(10, 30)
    noisy = []
    for i in gen:
        crystal = structures.crystals[i]
        scale = float(sigma) if i % 2 == 0 else float(sigma) / 20
        shift = rng.normal(scale=scale, size=crystal.frac_coords.shape)  # Å
        frac = crystal.frac_coords + shift @ np.linalg.inv(crystal.lattice)
        noisy.append(Crystal.checked(crystal.lattice, frac % 1.0, crystal.numbers))
    write(gen_out, [structures.names[i] for i in gen], noisy)
    ref = [*range(10), *range(11, 30, 2)]
    write(ref_out, [structures.names[i] for i in ref], [structures.crystals[i] for i in ref])


if __name__ == "__main__":
    main()
