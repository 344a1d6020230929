"""List the structures of a CDVAE CSV whose compositional validity differs between CDVAE's code
with smact 2.2.1 (the golden of make_cdvae_smact_golden.py) and SMACT 4's own `smact_validity`
with oxidation_states_set="smact14" (run by hand, in the project venv with smact 4 installed).

    python tests/data/validity/make_smact_differences.py ../shared/data/mp_20/test.csv.gz \
        tests/data/validity/cdvae_smact221_mp20_test.json.gz \
        tests/data/validity/mp20_test_smact_differences.json
"""
import gzip
import json
import sys
import warnings
from importlib.metadata import version

from pymatgen.core import Composition, Element
from smact.screening import smact_validity

from crystal_metrics import read_structures


def main():
    csv, golden_path, out = sys.argv[1:]
    with gzip.open(golden_path, "rt") as f:
        golden = json.load(f)["compositions"]
    structures = read_structures(csv)
    rows = []
    for name, crystal in zip(structures.names, structures.crystals):
        numbers, counts = crystal.reduced_composition()
        key = " ".join(f"{z}:{c}" for z, c in zip(numbers, counts))
        composition = Composition({Element.from_Z(z): c for z, c in zip(numbers, counts)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smact14 = bool(smact_validity(composition, oxidation_states_set="smact14"))
        if golden[key][1] != smact14:
            rows.append({"material_id": name, "formula": composition.reduced_formula,
                         "composition": key, "smact221": golden[key][1], "smact14": smact14})
    result = {"source": f"{csv}: structures whose compositional validity differs between CDVAE's "
                        "smact_validity with smact 2.2.1 (smact221) and smact "
                        f"{version('smact')}'s smact_validity(oxidation_states_set='smact14'); "
                        "composition as 'Z:count' of the reduced formula; made by "
                        "tests/data/validity/make_smact_differences.py",
              "structures": rows}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(rows)} structures differ")


if __name__ == "__main__":
    main()
