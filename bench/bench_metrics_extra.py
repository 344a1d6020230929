"""Match rate and uniqueness throughput, each against a baseline in the same run.

    python bench/bench_metrics_extra.py [--data ../shared/data/mp_20] [--n-match 1000] [--n-unique 500]

Structures: the first N of MP-20 test (`DATA/test.csv.gz`), or examples/mp20_test when the data
is absent. Match rate: each structure against a copy whose fractional coordinates carry Gaussian
noise (σ = 0.005), pairs/s with 1 worker and with 2. Uniqueness: N structures plus a rotated
supercell of every fifth, ours (composition groups, each structure reduced once; 1 and 2
workers) against the naive all-pairs baseline (MatterGen's `get_unique` over the whole set:
`StructureMatcher.fit` of each structure against every class representative so far).
Prints times, ratios and the agreement of the results; no timed asserts.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from _data import MP20, SOURCE
from pymatgen.analysis.structure_matcher import StructureMatcher

import crystal_metrics
from crystal_metrics import Crystal, StructureSet
from crystal_metrics.metrics.matching import match_structures
from crystal_metrics.metrics.uniqueness import TOLERANCES, uniqueness

ROOT = Path(__file__).resolve().parents[1]


def load(data: Path, n: int) -> StructureSet:
    source = data / "test.csv.gz"
    if not source.exists():
        print(f"{source} not found, so using {ROOT / 'examples/mp20_test'} ({SOURCE})")
        source = ROOT / "examples/mp20_test"
    structures = crystal_metrics.read_structures(source)
    return StructureSet(structures.names[:n], structures.crystals[:n])


def noisy(structures: StructureSet, sigma: float = 0.005, seed: int = 0) -> StructureSet:
    rng = np.random.default_rng(seed)
    return StructureSet(structures.names, [
        Crystal.checked(c.lattice, c.frac_coords + rng.normal(0, sigma, c.frac_coords.shape),
                        c.numbers) for c in structures.crystals])


def with_duplicates(structures: StructureSet) -> StructureSet:
    """The set plus a rotated 2x1x1 supercell of every fifth structure."""
    from scipy.spatial.transform import Rotation

    rotation = Rotation.random(random_state=0).as_matrix()
    copies = [Crystal.checked(c.lattice * [[2], [1], [1]] @ rotation.T,
                              np.vstack([c.frac_coords, c.frac_coords + [1, 0, 0]]) / [2, 1, 1],
                              np.tile(c.numbers, 2)) for c in structures.crystals[::5]]
    names = structures.names + [f"{name}:copy" for name in structures.names[::5]]
    return StructureSet(names, structures.crystals + copies)


def naive_unique_count(structures: StructureSet) -> int:
    """MatterGen's get_unique on the whole set: every structure against every representative."""
    matcher = StructureMatcher(**TOLERANCES)
    representatives = []
    for structure in structures.structures:
        if not any(matcher.fit(structure, other) for other in representatives):
            representatives.append(structure)
    return len(representatives)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MP20)
    parser.add_argument("--n-match", type=int, default=1000, help="pairs to match")
    parser.add_argument("--n-unique", type=int, default=500, help="structures before duplicates")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    ref = load(args.data, args.n_match)
    gen = noisy(ref)
    serial, serial_s = timed(match_structures, gen, ref, workers=1, progress=False)
    parallel, parallel_s = timed(match_structures, gen, ref, workers=2, progress=False)
    n = len(ref)
    print(f"match rate, {n} pairs: match rate {serial.match_rate:.4f}, RMSE {serial.rmse:.4f} "
          f"({serial.n_invalid} invalid predictions, unmatched)")
    print(f"  1 worker:  {serial_s:7.2f} s  {n / serial_s:7.1f} pairs/s")
    print(f"  2 workers: {parallel_s:7.2f} s  {n / parallel_s:7.1f} pairs/s  "
          f"speed-up {serial_s / parallel_s:.2f}x, identical: "
          f"{np.array_equal(serial.sample_rms, parallel.sample_rms, equal_nan=True)}")

    structures = with_duplicates(load(args.data, args.n_unique))
    ours, ours_s = timed(uniqueness, structures, workers=1, progress=False)
    ours2, ours2_s = timed(uniqueness, structures, workers=2, progress=False)
    naive, naive_s = timed(naive_unique_count, structures)
    n = len(structures)
    print(f"uniqueness, {n} structures: {ours.summary()['n_unique']} unique "
          f"(naive baseline: {naive}; agree: {naive == ours.summary()['n_unique']}, "
          f"2 workers agree: {np.array_equal(ours.representative, ours2.representative)})")
    print(f"  naive all pairs:     {naive_s:7.2f} s  {n / naive_s:8.1f} structures/s")
    print(f"  grouped, 1 worker:   {ours_s:7.2f} s  {n / ours_s:8.1f} structures/s  "
          f"{naive_s / ours_s:.1f}x the baseline")
    print(f"  grouped, 2 workers:  {ours2_s:7.2f} s  {n / ours2_s:8.1f} structures/s  "
          f"{naive_s / ours2_s:.1f}x the baseline")


if __name__ == "__main__":
    main()
