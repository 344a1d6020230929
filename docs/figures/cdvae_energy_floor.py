"""Energy EMD with CDVAE's property model, three ways, for docs/results.md.

    python docs/figures/cdvae_energy_floor.py ../shared/data/mp_20/val.csv.gz \
        ../shared/data/mp_20/test.csv.gz --out docs/results_cdvae_energy_floor.json

GEN (first argument: MP-20 val for the floor, or a generated set) against every structure of
REF (MP-20 test), with CDVAE's mp20 DimeNet++ (formation energy per atom, eV/atom):
* all predicted GEN structures (what `crystal-metrics energy GEN REF --model cdvae` reports);
* the valid ones (CDVAE convention: structural and SMACT 2.2.1 validity, the default);
* random subsets of 1,000 valid ones, drawn as CDVAE's GenEval draws them (`Selection`, i.e.
  `np.random.choice` after `np.random.seed(S)`, S = 0..repeats-1; `crystal-metrics energy GEN REF
  --model cdvae --valid-only --n-samples 1000 --seed S` gives each): their mean and spread are
  what a published number computed that way can be compared with.
Predictions come from the crystal-metrics cache when `crystal-metrics energy` made them.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from crystal_metrics import CdvaeEnergy, Selection, read_structures, validity
from crystal_metrics.metrics.distribution import emd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gen")
    parser.add_argument("ref")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    model = CdvaeEnergy("mp20", workers=args.workers, progress=False)
    gen, ref = read_structures(args.gen, progress=False), read_structures(args.ref, progress=False)
    gen_values, ref_values = model.predict(gen).values, model.predict(ref).values
    ref_values = ref_values[np.isfinite(ref_values)]
    predicted = np.isfinite(gen_values)
    valid = validity(gen.crystals).overall & predicted
    subsets = [emd(gen_values[Selection(True, args.n_samples, seed).indices(len(gen), valid)],
                   ref_values) for seed in range(args.repeats)]
    summary = {
        "gen": args.gen, "ref": args.ref, "energy_model": model.model.describe(),
        "n_gen": len(gen), "n_gen_predicted": int(predicted.sum()), "n_ref": len(ref_values),
        "emd_all": emd(gen_values[predicted], ref_values),
        "n_gen_valid": int(valid.sum()), "emd_valid": emd(gen_values[valid], ref_values),
        "subsets": {"n_samples": args.n_samples, "repeats": args.repeats,
                    "mean": float(np.mean(subsets)), "std": float(np.std(subsets)),
                    "min": float(np.min(subsets)), "max": float(np.max(subsets))},
        "gen_median": float(np.median(gen_values[predicted])),
        "ref_median": float(np.median(ref_values))}
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
