"""Coverage fingerprints, COV distances and CHGNet energies against a baseline, same run.

    python bench/bench_coverage.py [--data ../shared/data/mp_20 --n 500]

Data: the example sets (40 MP-20 test CIFs vs 40 MP-20 val rows), or with --data the first N
structures of MP-20 test (generated) and val (reference); skipped if those files are absent.
1. Fingerprints (CrystalNN + Magpie): structures/s in this process vs 2 forked workers; with the
   fingerprint cache (in a temporary folder), a second run against the first.
2. COV-R / COV-P from the fingerprints: scipy cdist (ours) vs a Python double loop over pairs.
3. CHGNet energies: structures/s one structure at a time vs batches of 16 and 32.
Prints throughputs, ratios and the agreement of the results; no timed assertions. Parts whose
extra ([coverage], [mlip]) is not installed are skipped.
"""
from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
from _data import mp20_split

import crystal_metrics
from crystal_metrics.features import StructureCache
from crystal_metrics.features.fingerprints import fingerprints
from crystal_metrics.metrics.coverage import CUTOFFS, coverage_scores

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def naive_coverage(gen_s, gen_c, ref_s, ref_c, struct_cutoff, comp_cutoff) -> dict:
    """COV-R / COV-P with one distance per (generated, reference) pair in Python loops."""
    gen_struct, gen_comp = [np.inf] * len(gen_s), [np.inf] * len(gen_s)
    ref_struct, ref_comp = [np.inf] * len(ref_s), [np.inf] * len(ref_s)
    for i in range(len(gen_s)):
        for j in range(len(ref_s)):
            d_struct = float(np.linalg.norm(gen_s[i] - ref_s[j]))
            d_comp = float(np.linalg.norm(gen_c[i] - ref_c[j]))
            gen_struct[i] = min(gen_struct[i], d_struct)
            ref_struct[j] = min(ref_struct[j], d_struct)
            gen_comp[i], ref_comp[j] = min(gen_comp[i], d_comp), min(ref_comp[j], d_comp)
    recall = np.mean([s <= struct_cutoff and c <= comp_cutoff
                      for s, c in zip(ref_struct, ref_comp)])
    precision = np.mean([s <= struct_cutoff and c <= comp_cutoff
                         for s, c in zip(gen_struct, gen_comp)])
    return {"cov_recall": float(recall), "cov_precision": float(precision)}


def bench_fingerprints(gen, ref) -> None:
    crystals = gen + ref
    fingerprints(crystals[:2], workers=1)  # imports matminer and fills its caches, untimed
    serial, serial_s = timed(fingerprints, crystals, workers=1)
    forked, forked_s = timed(fingerprints, crystals, workers=2)
    n = len(crystals)
    print(f"fingerprints, {n} structures")
    print(f"  1 process:   {serial_s:7.2f} s  {n / serial_s:7.1f} structures/s")
    print(f"  2 workers:   {forked_s:7.2f} s  {n / forked_s:7.1f} structures/s")
    print(f"  speed-up:    {serial_s / forked_s:.2f}x   identical: "
          f"{np.array_equal(serial.structure, forked.structure)}")
    with tempfile.TemporaryDirectory() as folder:
        cache = StructureCache(Path(folder) / "embeddings.sqlite")
        first, first_s = timed(fingerprints, crystals, workers=2, cache=cache)
        second, second_s = timed(fingerprints, crystals, workers=2, cache=cache)
    identical = all(np.array_equal(getattr(run, field), getattr(forked, field))
                    for run in (first, second) for field in ("structure", "composition", "indices"))
    print("fingerprint cache, 2 workers")
    print(f"  first run:   {first_s:7.2f} s  (computes and stores; {first_s / forked_s:.2f}x the "
          "time without cache)")
    print(f"  second run:  {second_s:7.3f} s  {first_s / second_s:.0f}x faster than the first   "
          f"identical: {identical}")
    split = len(gen)
    gen_fp = [serial.structure[:split], serial.composition[:split]]
    ref_fp = [serial.structure[split:], serial.composition[split:]]
    cutoffs = CUTOFFS["mp20"]
    ours, ours_s = timed(coverage_scores, *gen_fp, *ref_fp, *cutoffs)
    naive, naive_s = timed(naive_coverage, *gen_fp, *ref_fp, *cutoffs)
    pairs = split * (n - split)
    print(f"COV-R / COV-P, {split} x {n - split} = {pairs} pairs, mp20 cutoffs")
    print(f"  cdist:       {ours_s * 1e3:9.2f} ms  {ours}")
    print(f"  double loop: {naive_s * 1e3:9.2f} ms  {naive}")
    print(f"  speed-up:    {naive_s / ours_s:.0f}x   identical: {ours == naive}")


def bench_chgnet(crystals) -> None:
    from crystal_metrics.mlip import Chgnet

    n = len(crystals)
    print(f"CHGNet energies, {n} structures (cpu, graph building included)")
    for batch_size in (1, 16, 32):
        model = Chgnet(device="cpu", batch_size=batch_size, progress=False)
        model.energies(crystals[:2])  # loads the model and warms up, untimed
        (energies, _), seconds = timed(model.energies, crystals)
        if batch_size == 1:
            one_by_one, one_by_one_s = energies, seconds
            print(f"  one by one:  {seconds:7.2f} s  {n / seconds:7.1f} structures/s")
            continue
        print(f"  batch {batch_size:>2}:    {seconds:7.2f} s  {n / seconds:7.1f} structures/s  "
              f"{one_by_one_s / seconds:.2f}x one by one, max |difference| "
              f"{np.nanmax(np.abs(energies - one_by_one)):.2e} eV/atom")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder with MP-20 test.csv.gz and val.csv.gz")
    parser.add_argument("--n", type=int, default=500, help="structures per set with --data")
    args = parser.parse_args()
    if args.data:
        paths = [mp20_split(args.data, "test"), mp20_split(args.data, "val")]
    else:
        paths = [ROOT / "examples" / "mp20_test", ROOT / "examples" / "mp20_val_sample.csv"]
    gen, ref = (crystal_metrics.read_structures(p).crystals[:args.n] for p in paths)
    if importlib.util.find_spec("matminer"):
        bench_fingerprints(gen, ref)
    else:
        print("fingerprints skipped: pip install 'crystal-metrics[coverage]'")
    if importlib.util.find_spec("chgnet"):
        bench_chgnet(gen + ref)
    else:
        print("CHGNet skipped: pip install 'crystal-metrics[mlip]'")


if __name__ == "__main__":
    main()
