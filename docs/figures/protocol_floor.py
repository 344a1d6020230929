"""The floor of the model protocol (docs/results.md): what a perfect model would score at n = 1,000.

    python docs/figures/protocol_floor.py --val ../shared/data/mp_20/val.csv.gz \
        --test ../shared/data/mp_20/test.csv.gz [--first 1000] [--out docs/results_protocol_floor.json]

Density EMD of the first N test structures (the protocol's references themselves) against all
of test; ALIGNN-FF formation-energy EMD (eV/atom) and FAD of the first N val structures (real
crystals the model was allowed to see) against all of test. Embeddings come from the cache.
"""
import argparse
import json
from pathlib import Path

import crystal_metrics as cm


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("docs/results_protocol_floor.json"))
    args = parser.parse_args()
    test = cm.read_structures(args.test, progress=False)
    val = cm.read_structures(args.val, progress=False)
    first_test = test.subset(range(args.first))
    first_val = val.subset(range(args.first))
    features = cm.FeatureSource(device="cpu", progress=False)
    val_features, test_features = features(first_val), features(test)
    result = {"first": args.first,
              "density_emd_first_test": cm.density_emd(first_test, test),
              "density_emd_first_val": cm.density_emd(first_val, test),
              "energy_emd_first_val": cm.energy_emd(val_features, test_features),
              "fad_first_val": cm.fad(val_features, test_features)["fad"]}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
