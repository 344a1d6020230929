"""Sampler settings of the shipped model: FAD and validity of N test compositions per setting.

    python docs/figures/sampler_settings.py --ref ../shared/data/mp_20/test.csv.gz --n 500 \
        --out docs/results_sampler.json

For each (steps, corrector step size, restarts, restart tau) setting, samples the same N
compositions of REF (drawn with --seed) with the same seed, on CPU in batches of 100, and scores
them: CSP match rate against the structures the compositions come from (DiffCSP tolerances),
and against all of REF: FAD (ALIGNN-FF, embeddings from the crystal-metrics cache), structural
validity, median shortest interatomic distance (Å), median formation energy (eV/atom) and median
density (g/cm³).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from crystal_metrics import (
    Crystal,
    FeatureSource,
    frechet_distance,
    match,
    read_structures,
    validity,
)
from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import DEFAULT_CHECKPOINT
from gemsdiff_model.sampler import generate

#: (steps, step_lr, restarts, restart_tau)
SETTINGS = ((50, 1e-5, 0, 0.1), (100, 1e-5, 0, 0.1), (200, 0.0, 0, 0.1), (200, 1e-5, 0, 0.1),
            (200, 3e-5, 0, 0.1), (200, 1e-5, 2, 0.1), (500, 1e-5, 0, 0.1))


def sample(model, schedule, standardizer, numbers: list, setting: tuple, seed: int) -> list:
    steps, step_lr, restarts, restart_tau = setting
    generator = torch.Generator().manual_seed(seed)
    crystals = []
    for start in range(0, len(numbers), 100):
        chunk = numbers[start:start + 100]
        lattices, fracs = generate(model, schedule, standardizer, chunk, steps=steps,
                                   step_lr=step_lr, generator=generator, restarts=restarts,
                                   restart_tau=restart_tau)
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
    model, schedule, standardizer, _ = load_model(DEFAULT_CHECKPOINT)
    rows = []
    for setting in SETTINGS:
        start = time.perf_counter()
        generated = sample(model, schedule, standardizer, numbers, setting, args.seed)
        seconds = time.perf_counter() - start
        stats, result = features(generated), validity(generated)
        matched = match(generated, [crystals[i] for i in chosen], pair_by="order")
        rows.append({**dict(zip(("steps", "step_lr", "restarts", "restart_tau"), setting)),
                     "n": args.n,
                     "match_rate": matched.match_rate,
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
