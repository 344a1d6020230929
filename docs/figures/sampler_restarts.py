"""Restart sampling with the shipped model: FAD and validity of N test compositions per setting.

    python docs/figures/sampler_restarts.py --ref ../shared/data/mp_20/test.csv.gz --n 500 \
        --out docs/results_restarts.json

For each (restarts, restart step) setting, samples the same N compositions of REF (drawn with
--seed) with the same seed, on CPU in batches of 20, and scores them against all of REF: FAD
(ALIGNN-FF, embeddings from the crystal-metrics cache), structural validity, median shortest
interatomic distance (Å), median formation energy (eV/atom) and median density (g/cm³).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from crystal_metrics import Crystal, FeatureSource, frechet_distance, read_structures, validity
from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import DEFAULT_CHECKPOINT, generate

SETTINGS = ((0, 10), (2, 10), (4, 5), (4, 10), (8, 10))  # (restarts, restart step)


def sample(model, schedule, numbers: list, restarts: int, restart_step: int, seed: int) -> list:
    generator = torch.Generator().manual_seed(seed)
    crystals = []
    for start in range(0, len(numbers), 20):
        chunk = numbers[start:start + 20]
        lattices, fracs = generate(model, schedule, chunk, generator=generator, restarts=restarts,
                                   restart_step=restart_step)
        crystals += [Crystal(lat.numpy(), f.numpy(), np.array(z))
                     for lat, f, z in zip(lattices, fracs, chunk)]
    return crystals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", required=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    features = FeatureSource(progress=False)
    ref = features(args.ref)
    crystals = read_structures(args.ref, progress=False).crystals
    chosen = np.random.default_rng(args.seed).choice(len(crystals), args.n, replace=False)
    numbers = [crystals[i].numbers.tolist() for i in chosen]
    model, schedule, _, _ = load_model(DEFAULT_CHECKPOINT)
    rows = []
    for restarts, restart_step in SETTINGS:
        start = time.perf_counter()
        generated = sample(model, schedule, numbers, restarts, restart_step, args.seed)
        seconds = time.perf_counter() - start
        stats, result = features(generated), validity(generated)
        rows.append({"restarts": restarts, "restart_step": restart_step, "n": args.n,
                     "fad": frechet_distance(*stats.gaussian, *ref.gaussian),
                     "structural_validity": float(result.structural.mean()),
                     "median_min_distance_A": float(np.median(result.min_distance)),
                     "median_energy_eV_atom": float(np.median(stats.energies)),
                     "median_density_g_cm3": float(np.median(stats.densities)),
                     "sampling_s": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
