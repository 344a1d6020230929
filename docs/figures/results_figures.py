"""Figures and numbers of docs/results.md (MP-20 test as reference; ALIGNN-FF latents).

    python docs/figures/results_figures.py --gen runs/gemsdiff_mp20_test \
        --ref ../shared/data/mp_20/test.csv.gz --val ../shared/data/mp_20/val.csv.gz \
        --naive runs/naive_mp20_test --out docs

Writes results_histograms.png (density, formation energy), results_fad_vs_size.png (Figure 4:
FAD against sample size), results_fad_vs_step.png (Figure 3 on a generated set: FAD of the
sampler's state after each step, for --step-set compositions of REF sampled on CPU with the
shipped checkpoint) and results_figures.json. Embeddings come from the crystal-metrics cache.
"""
import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from crystal_metrics import (
    Crystal,
    FeatureSource,
    frechet_distance,
    gaussian_statistics,
)
from crystal_metrics.io import read_structures
from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import DEFAULT_CHECKPOINT, generate

SIZES = (100, 250, 500, 1000, 2000, 4000, 9046)
STEPS = (100, 90, 80, 60, 40, 20, 10, 5, 0)


def fad(a, ref_stats) -> float:
    return frechet_distance(*gaussian_statistics(a), *ref_stats)


def fad_vs_size(sets: dict, ref, rng, repeats: int = 3) -> dict:
    """FAD of random subsets of each set against the whole reference, mean over repeats."""
    ref_stats = gaussian_statistics(ref.features)
    out = {}
    for label, stats in sets.items():
        sizes = [n for n in SIZES if n <= stats.n]
        out[label] = {n: float(np.mean([fad(stats.features[rng.choice(stats.n, n, replace=False)],
                                            ref_stats) for _ in range(repeats)])) for n in sizes}
    return out


def fad_vs_step(ref_path, ref, features: FeatureSource, n: int, seed: int) -> dict:
    """FAD against ``ref`` of the sampler's states after the steps in STEPS, for n compositions
    of ``ref_path`` drawn at random (CPU, batches of 100)."""
    model, schedule, _, _ = load_model(DEFAULT_CHECKPOINT)
    crystals = read_structures(str(ref_path), progress=False).crystals
    rng = np.random.default_rng(seed)
    numbers = [crystals[i].numbers.tolist() for i in rng.choice(len(crystals), n, replace=False)]
    states = {s: [] for s in STEPS}
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, 100):
        chunk = numbers[start:start + 100]
        sizes = [len(z) for z in chunk]

        def keep(s, lattice, frac, sizes=sizes, chunk=chunk):
            if s in states:
                states[s] += [Crystal(lat.double().numpy(), f.double().numpy(), np.array(z))
                              for lat, f, z in zip(lattice, torch.split(frac, sizes), chunk)]

        generate(model, schedule, chunk, generator=gen, on_step=keep)
    ref_stats = gaussian_statistics(ref.features)
    return {s: fad(features(states[s]).features, ref_stats) for s in STEPS if states[s]}


def main():
    parser = argparse.ArgumentParser()
    for name in ("--gen", "--ref", "--val", "--naive"):
        parser.add_argument(name, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--step-set", type=int, default=500, help="0: no FAD-vs-step figure")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    features = FeatureSource(progress=False)
    ref, gen, val, naive = (features(p) for p in (args.ref, args.gen, args.val, args.naive))
    rng = np.random.default_rng(args.seed)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, unit, bins in ((axes[0], "densities", "density (g/cm³)", np.linspace(0, 16, 81)),
                                (axes[1], "energies", "ALIGNN-FF formation energy (eV/atom)",
                                 np.linspace(-5, 3, 81))):
        for label, stats, style in (("MP-20 test (reference)", ref, "k-"),
                                    ("GemsDiff (ours)", gen, "C0-"), ("naive baseline", naive, "C3--")):
            hist, edges = np.histogram(np.clip(getattr(stats, key), bins[0], bins[-1]), bins, density=True)
            ax.step(edges[:-1], hist, style, where="post", label=label)
        ax.set_xlabel(unit)
    axes[0].set_ylabel("probability density")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "results_histograms.png", dpi=120)

    sizes = fad_vs_size({"GemsDiff (ours)": gen, "MP-20 val": val, "naive baseline": naive}, ref, rng)
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for label, values in sizes.items():
        ax.plot(list(values), list(values.values()), "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="generated structures (subset of the set)",
           ylabel="FAD against all of MP-20 test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "results_fad_vs_size.png", dpi=120)

    steps = fad_vs_step(args.ref, ref, features, args.step_set, args.seed) if args.step_set else {}
    if steps:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot(list(steps), list(steps.values()), "o-")
        ax.set(yscale="log", xlabel="diffusion step t (sampling runs from 100 to 0)",
               ylabel=f"FAD against MP-20 test ({args.step_set} samples)")
        ax.invert_xaxis()
        fig.tight_layout()
        fig.savefig(args.out / "results_fad_vs_step.png", dpi=120)
    (args.out / "results_figures.json").write_text(json.dumps(
        {"fad_vs_size": sizes, "fad_vs_step": steps, "step_set": args.step_set}, indent=1) + "\n")


if __name__ == "__main__":
    main()
