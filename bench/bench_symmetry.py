"""Space groups and diversity distances against a naive baseline, same run.

    python bench/bench_symmetry.py [--data ../shared/data/mp_20] [--n 1000] [--workers 1]

1. Space groups of the first N MP-20 test structures (the example set without --data):
   baseline, pymatgen `Structure.from_str` + `SpacegroupAnalyzer` per CIF in one process; ours,
   `read_structures` + `space_groups` with `--workers` processes, first without cache, then a
   second run against a cache in a temporary folder (filled by the first).
2. Mean pairwise distance of N and 10 N random 132-d fingerprints (the composition diversity's
   size): blocked upper triangle (ours) against CDVAE's `pdist(x).mean()`, time and peak memory.
Prints throughputs, ratios and the agreement of the results; no timed assertions.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist

import crystal_metrics
from crystal_metrics.features import StructureCache
from crystal_metrics.features.space_groups import space_groups
from crystal_metrics.metrics.diversity import mean_pairwise_distance
from crystal_metrics.metrics.symmetry import ANGLE_TOLERANCE, SYMPREC

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def naive_space_groups(cifs: list[str]) -> list[int]:
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    return [SpacegroupAnalyzer(Structure.from_str(cif, fmt="cif"), symprec=SYMPREC,
                               angle_tolerance=ANGLE_TOLERANCE).get_space_group_number()
            for cif in cifs]


def peak_memory(fn, *args) -> tuple[float, float, float]:
    """(result, seconds, peak MiB allocated by numpy/python while running fn)."""
    tracemalloc.start()
    result, seconds = timed(fn, *args)
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="MP-20 folder (test.csv.gz)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.data:
            table = pd.read_csv(args.data / "test.csv.gz").head(args.n)
        else:
            table = pd.read_csv(ROOT / "examples" / "mp20_val_sample.csv")
        table.to_csv(folder / "set.csv", index=False)
        cifs, n = table["cif"].tolist(), len(table)
        cache = StructureCache(folder / "e.sqlite")

        def ours(store=None):
            crystals = crystal_metrics.read_structures(folder / "set.csv", workers=args.workers,
                                                       progress=False).crystals
            return space_groups(crystals, workers=args.workers, progress=False, cache=store)

        print(f"space groups of {n} structures (symprec {SYMPREC} Å), workers {args.workers}")
        base, base_s = timed(naive_space_groups, cifs)
        found, ours_s = timed(ours)
        ours(cache)
        cached, cached_s = timed(ours, cache)
    print(f"  baseline (parse + analyse, 1 process): {base_s:7.2f} s  {n / base_s:7.1f} /s")
    print(f"  ours (read + analyse, no cache):       {ours_s:7.2f} s  {n / ours_s:7.1f} /s"
          f"  ({base_s / ours_s:.2f}x)")
    print(f"  ours, cached second run:               {cached_s:7.3f} s  ({base_s / cached_s:.0f}x)")
    print(f"  identical: {found.numbers.tolist() == base == cached.numbers.tolist()}")
    rng = np.random.default_rng(0)
    for size in (args.n, 10 * args.n):
        points = rng.normal(size=(size, 132))
        reference, ref_s, ref_mb = peak_memory(lambda x: pdist(x).mean(), points)
        blocked, ours_s, ours_mb = peak_memory(mean_pairwise_distance, points)
        print(f"mean pairwise distance of {size} x 132: pdist().mean() {ref_s:.2f} s, "
              f"{ref_mb:.0f} MiB peak; blocked {ours_s:.2f} s, {ours_mb:.0f} MiB peak; "
              f"relative difference {abs(blocked - reference) / reference:.1e}")


if __name__ == "__main__":
    main()
