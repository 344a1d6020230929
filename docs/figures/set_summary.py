"""Medians and tails of the sets of docs/results.md: density, shortest distance, energy.

    python docs/figures/set_summary.py runs/protocol/gen runs/protocol/first.csv.gz \
        ../shared/data/mp_20/test.csv.gz runs/naive_first1000 --out docs/results_set_summary.json

For each set: median density (g/cm³), 5th percentile and median of the shortest interatomic
distance (Å), median ALIGNN-FF formation energy (eV/atom) and the fraction above 3 eV/atom.
Embeddings come from the crystal-metrics cache (filled by `model_protocol.py`).
"""
import argparse
import json
from pathlib import Path

import numpy as np

from crystal_metrics import FeatureSource, read_structures, validity


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    features = FeatureSource(device="cpu", progress=False)
    summary = {}
    for path in args.sets:
        structures = read_structures(path, progress=False)
        stats, distances = features(structures), validity(structures.crystals).min_distance
        summary[path] = {"n": stats.n,
                         "median_density_g_cm3": float(np.median(stats.densities)),
                         "min_distance_A_p5": float(np.percentile(distances, 5)),
                         "min_distance_A_median": float(np.median(distances)),
                         "median_energy_eV_atom": float(np.nanmedian(stats.energies)),
                         "fraction_energy_above_3_eV_atom": float(np.mean(stats.energies > 3))}
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
