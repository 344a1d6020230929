"""Write mp20_test_200.json.gz: the first 200 structures of MP-20 test.csv.gz.

Usage (needs the MP-20 csv, not needed to run the tests):
    python tests/data/alignn/make_fixtures.py /work/shared/data/mp_20/test.csv.gz

Each record: material_id, lattice (3x3, Å, rows), species (symbols),
frac_coords (N x 3) as parsed by pymatgen from the `cif` column; floats are
written with repr precision so graphs are rebuilt bit-identically.
"""

import gzip
import json
import sys
import warnings
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

N = 200


def main(csv_path: str) -> None:
    warnings.filterwarnings("ignore")
    df = pd.read_csv(csv_path)
    records = []
    for mid, cif in zip(df.material_id[:N], df.cif[:N]):
        s = Structure.from_str(cif, fmt="cif")
        records.append(
            {
                "material_id": mid,
                "lattice": s.lattice.matrix.tolist(),
                "species": [sp.symbol for sp in s.species],
                "frac_coords": s.frac_coords.tolist(),
            }
        )
    out = Path(__file__).with_name("mp20_test_200.json.gz")
    with gzip.open(out, "wt") as f:
        json.dump(records, f, separators=(",", ":"))
    print(out, out.stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/mp_20/test.csv.gz")
