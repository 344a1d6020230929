"""Figures and numbers of docs/results.md (MP-20 test as reference; ALIGNN-FF latents).

    python docs/figures/results_figures.py --gen runs/protocol/gen \
        --ref ../shared/data/mp_20/test.csv.gz --val ../shared/data/mp_20/val.csv.gz \
        --naive runs/naive_first1000 --out docs --step-set 200

Writes results_histograms.png (density, formation energy; values outside the axes are counted
in the end bins), results_fad_vs_size.png (Figure 4: FAD against sample size),
results_fad_vs_step.png (Figure 3: FAD against the noise level, of the shipped model's sampler
state along the reverse chain for --step-set compositions of REF, sampled on CPU, and of
--step-set VAL structures diffused forward as in the paper) and results_figures.json.
Embeddings come from the crystal-metrics cache.
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
from gemsdiff_model.diffusion import corrupt
from gemsdiff_model.geometry import to_canonical_basis
from gemsdiff_model.sample import DEFAULT_CHECKPOINT
from gemsdiff_model.sampler import generate

SIZES = (100, 250, 500, 1000, 2000, 4000, 9046)
#: noise levels tau of the states compared (the chain runs from 1 to 0)
TAUS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0)
SAMPLING_STEPS = 100   # gemsdiff-sample's default


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


def _crystals(lattice, frac, numbers: list) -> list[Crystal]:
    """Batch tensors -> Crystals in their canonical basis (same crystals)."""
    sizes = [len(z) for z in numbers]
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    lattice, frac = to_canonical_basis(lattice, frac, batch)
    return [Crystal(lat.double().numpy(), f.double().numpy(), np.array(z))
            for lat, f, z in zip(lattice, torch.split(frac, sizes), numbers)]


def _level(tau: float) -> float:
    return round(tau * SAMPLING_STEPS) / SAMPLING_STEPS


def fad_vs_step(ref_path, val_path, ref, features: FeatureSource, n: int, seed: int) -> dict:
    """FAD against ``ref`` at the noise levels TAUS of two chains, n structures each (CPU):
    "sampler", the shipped model's state after the reverse step to tau, for n compositions of
    ``ref_path`` (the prior at tau = 1); "noised val", n structures of ``val_path`` diffused
    forward to tau with the training corruption (the paper's Figure 3; tau = 0 is the data)."""
    model, schedule, standardizer, _ = load_model(DEFAULT_CHECKPOINT)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    sampler = {tau: [] for tau in TAUS}
    crystals = read_structures(str(ref_path), progress=False).crystals
    numbers = [crystals[i].numbers.tolist() for i in rng.choice(len(crystals), n, replace=False)]
    wanted = {_level(tau): tau for tau in TAUS}
    for start in range(0, n, 100):
        chunk = numbers[start:start + 100]

        def keep(level, lattice, frac, chunk=chunk):
            if _level(level) in wanted:
                sampler[wanted[_level(level)]] += _crystals(lattice, frac, chunk)

        generate(model, schedule, standardizer, chunk, steps=SAMPLING_STEPS, generator=gen,
                 on_step=keep)
    crystals = read_structures(str(val_path), progress=False).crystals
    val = [crystals[i] for i in rng.choice(len(crystals), n, replace=False)]
    numbers = [c.numbers.tolist() for c in val]
    sizes = torch.tensor([len(z) for z in numbers])
    batch = torch.repeat_interleave(torch.arange(n), sizes)
    lattice0, frac0 = to_canonical_basis(torch.tensor(np.stack([c.lattice for c in val])),
                                         torch.tensor(np.concatenate([c.frac_coords for c in val])),
                                         batch)
    coords0 = standardizer.encode(lattice0, sizes)
    noised = {}
    for tau in TAUS:
        frac_t, coords_t, _, _ = corrupt(schedule, frac0, coords0,
                                         torch.full((n,), tau, dtype=torch.float64), batch,
                                         sizes, gen)
        noised[tau] = _crystals(standardizer.decode(coords_t, sizes), frac_t, numbers)
    # the prior state of the sampler (tau = 1) is drawn like the noised data at tau = 1
    sampler[1.0] = sampler[1.0] or noised[1.0]
    ref_stats = gaussian_statistics(ref.features)
    return {label: {tau: fad(features(states[tau]).features, ref_stats) for tau in TAUS}
            for label, states in (("sampler", sampler), ("noised val", noised))}


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

    # energies span -100 to ~1000 eV/atom: bins of equal width on an asinh axis (linear near 0)
    energy_bins = np.sinh(np.linspace(np.arcsinh(-100), np.arcsinh(1000), 81))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, unit, bins in ((axes[0], "densities", "density (g/cm³)", np.linspace(0, 16, 81)),
                                (axes[1], "energies", "ALIGNN-FF formation energy (eV/atom)",
                                 energy_bins)):
        for label, stats, style in (("MP-20 test (reference)", ref, "k-"),
                                    ("GemsDiff (ours)", gen, "C0-"), ("naive baseline", naive, "C3--")):
            counts, edges = np.histogram(np.clip(getattr(stats, key), bins[0], bins[-1]), bins)
            ax.step(edges[:-1], counts / counts.sum(), style, where="post", label=label)
        ax.set(xlabel=unit, ylabel="fraction of structures per bin")
    axes[1].set_xscale("asinh", linear_width=1.0)
    ticks = [-100, -10, -1, 0, 1, 10, 100, 1000]
    axes[1].set_xticks(ticks, [str(t) for t in ticks])
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

    steps = (fad_vs_step(args.ref, args.val, ref, features, args.step_set, args.seed)
             if args.step_set else {})
    if steps:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for label, text in (("sampler", "GemsDiff sampler state (reverse chain)"),
                            ("noised val", "MP-20 val diffused forward to t")):
            ax.plot(list(steps[label]), list(steps[label].values()), "o-", label=text)
        ax.set(yscale="log", xlabel="noise level tau (sampling runs from 1 to 0)",
               ylabel=f"FAD against MP-20 test ({args.step_set} structures)")
        ax.invert_xaxis()
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out / "results_fad_vs_step.png", dpi=120)
    (args.out / "results_figures.json").write_text(json.dumps(
        {"fad_vs_size": sizes, "fad_vs_step": steps, "step_set": args.step_set}, indent=1) + "\n")


if __name__ == "__main__":
    main()
