"""Peak memory and time of the size-dependent steps on large cells, against the all-pairs method.

    python bench/bench_memory.py [--sizes 10 13 17 22] [--old-up-to 600] [--embed-up-to 13]
                                 [--fingerprint-up-to 10] [--skip-evaluate]

Cells: k³ silicon atoms on a simple cubic grid 2.3 Å apart, each moved by Gaussian noise of
0.05 grid steps (k = 10, 13, 17, 22: 1,000 to 10,648 atoms). Every measurement runs in a fresh
process, one thread; "peak" is its peak RSS, "added" the rise of the peak RSS during the step
(above what the imports and the structure already hold); steps under 1 s are timed best of 3.

1. Shortest interatomic distance (validity): `min_distance` against the all-pairs method it
   replaced (atoms² × lattice images × 3 float64), run up to --old-up-to atoms, its array size
   given beyond.
2. ALIGNN graph (`knn_edges`, the default whole-shell graph).
3. ALIGNN-FF embedding of one cell (up to k = --embed-up-to): the memory behind --max-atoms.
4. CrystalNN structure fingerprint (coverage) of one cell, up to k = --fingerprint-up-to.
5. CDVAE's mp20 property model of one cell (CrystalNN graph, triplets, DimeNet++), up to
   k = --cdvae-up-to: the memory behind --max-atoms for `energy --model cdvae`.
6. `crystal-metrics evaluate` of the 40 example CIFs with and without one 10,648-atom cell added.
Needs nothing outside the repository except the ALIGNN-FF and CDVAE weights (fetched once).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def grid_cell(k: int):
    from crystal_metrics import Crystal

    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3) / k
    grid += rng.normal(scale=0.05 / k, size=grid.shape)
    return Crystal.checked(np.eye(3) * 2.3 * k, grid, [14] * len(grid))


def all_pairs_min_distance(crystal) -> float:
    """The method `min_distance` replaced: every pair under every image, (n, n, m, 3) float64."""
    from crystal_metrics.metrics.periodic import _lll_reduce

    def image_ranges(lattice):
        r = np.linalg.norm(lattice, axis=1).min()
        cross = np.linalg.norm(np.cross(lattice[[1, 2, 0]], lattice[[2, 0, 1]]), axis=1)
        return np.ceil(r / (abs(np.linalg.det(lattice)) / cross) + 0.5).astype(int)

    lattice, frac = crystal.lattice, crystal.frac_coords
    ranges = image_ranges(lattice)
    if np.prod(2 * ranges + 1) > 343:
        lattice, frac = _lll_reduce(lattice, frac)
        ranges = image_ranges(lattice)
    axes = [np.arange(-x, x + 1) for x in ranges]
    images = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3) @ lattice
    diff = frac[None, :, :] - frac[:, None, :]
    diff -= np.round(diff)
    d2 = (((diff @ lattice)[:, :, None, :] + images[None, None, :, :]) ** 2).sum(-1)
    n = len(frac)
    d2[np.arange(n), np.arange(n), int(np.flatnonzero((np.abs(images) < 1e-12).all(1))[0])] = np.inf
    return float(np.sqrt(d2.min()))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(kind: str, k: int) -> dict:
    """Run one step in this (fresh) process; its peak RSS and time."""
    import torch

    torch.set_num_threads(1)
    crystal = grid_cell(k)
    if kind == "embed":
        from crystal_metrics.alignn import load_extractor

        extractor = load_extractor(device="cpu")
        structure = crystal.to_pymatgen()
        step = lambda: extractor.embed([structure])
    elif kind == "fingerprint":
        from crystal_metrics.features.fingerprints import featurizers, structure_fingerprint

        featurizers()
        step = lambda: structure_fingerprint(crystal)
    elif kind == "cdvae":
        from crystal_metrics.cdvae import PropertyModel

        model = PropertyModel("mp20", device="cpu")
        _ = model.model, model.scaler
        step = lambda: model.predict([crystal], workers=1)
    elif kind == "graph":
        from crystal_metrics.alignn.graph import knn_edges

        step = lambda: knn_edges(crystal.lattice, crystal.frac_coords, shell_tol=1e-3)
    else:
        from crystal_metrics.metrics.periodic import min_distance

        step = {"validity": lambda: min_distance(crystal),
                "validity-all-pairs": lambda: all_pairs_min_distance(crystal)}[kind]
    before = peak_mb()
    start = time.perf_counter()
    value = step()
    seconds = time.perf_counter() - start
    added = peak_mb() - before
    if kind not in ("embed", "fingerprint", "cdvae") and seconds < 1:  # short steps: best of three
        for _ in range(2):
            start = time.perf_counter()
            step()
            seconds = min(seconds, time.perf_counter() - start)
    return {"kind": kind, "atoms": crystal.n_atoms, "s": seconds, "peak_mb": peak_mb(),
            "added_mb": added,
            "value": value if isinstance(value, float) else None}


def in_fresh_process(kind: str, k: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", kind, str(k)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def evaluate_peak(with_large: bool) -> tuple[float, float, str]:
    """Peak RSS (MB) and time of `crystal-metrics evaluate` of the examples (+ one 10,648-atom
    cell), against the example CSV; and the line that names the large cell."""
    from support import write_p1_cif

    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen"
        shutil.copytree(ROOT / "examples" / "mp20_test", gen)
        if with_large:
            write_p1_cif(gen / "big.cif", grid_cell(22))
        command = [shutil.which("crystal-metrics") or "crystal-metrics", "evaluate", str(gen),
                   str(ROOT / "examples" / "mp20_val_sample.csv"), "--device", "cpu",
                   "--no-cache", "--json", str(Path(tmp) / "e.json")]
        start = time.perf_counter()
        script = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], "
                  "capture_output=True, text=True); print(p.stdout + p.stderr); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
        out = subprocess.run([sys.executable, "-c", script, *command], capture_output=True,
                             text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        seconds = time.perf_counter() - start
        lines = out.stdout.strip().splitlines()
        data = json.loads((Path(tmp) / "e.json").read_text())
    named = next((line.strip() for line in lines if "not embedded gen:" in line), "")
    return float(lines[-1]), seconds, f"n_structures {data['n_structures']}, n_gen {data['n_gen']}; {named}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 13, 17, 22],
                        help="grid edges k (k³ atoms)")
    parser.add_argument("--old-up-to", type=int, default=600,
                        help="run the all-pairs method up to this many atoms")
    parser.add_argument("--embed-up-to", type=int, default=13, help="largest k embedded")
    parser.add_argument("--fingerprint-up-to", type=int, default=10,
                        help="largest k fingerprinted (CrystalNN, [coverage] extra)")
    parser.add_argument("--cdvae-up-to", type=int, default=10,
                        help="largest k through CDVAE's property model")
    parser.add_argument("--skip-evaluate", action="store_true")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return

    print("shortest distance (validity); all-pairs = the method it replaced")
    old_sizes = [k for k in (5, 6, 7, 8) if k ** 3 <= args.old_up_to]
    for k in old_sizes:
        new, old = in_fresh_process("validity", k), in_fresh_process("validity-all-pairs", k)
        print(f"  {new['atoms']:6d} atoms  k-d tree {new['s']:7.3f} s {new['added_mb']:8.1f} MB added"
              f"   all-pairs {old['s']:7.3f} s {old['added_mb']:8.1f} MB added   same value: "
              f"{abs(new['value'] - old['value']) < 1e-12 * old['value']}")
    rows = [in_fresh_process("validity", k) for k in args.sizes]
    for row in rows:
        images = 125  # a cubic cell: (2 * ceil(1.5) + 1)³ translations in the all-pairs method
        all_pairs_gb = row["atoms"] ** 2 * images * 3 * 8 / 2 ** 30
        print(f"  {row['atoms']:6d} atoms  k-d tree {row['s']:7.3f} s {row['added_mb']:8.1f} MB added"
              f" (peak {row['peak_mb']:.0f} MB)   all-pairs would allocate {all_pairs_gb:,.0f} GiB")
    first, last = rows[0], rows[-1]
    print(f"  {first['atoms']} -> {last['atoms']} atoms ({last['atoms'] / first['atoms']:.1f}x): "
          f"time {last['s'] / first['s']:.1f}x, added memory "
          f"{last['added_mb'] / max(first['added_mb'], 0.1):.1f}x")

    print("ALIGNN graph (knn_edges, whole shells)")
    graphs = [in_fresh_process("graph", k) for k in args.sizes]
    for row in graphs:
        print(f"  {row['atoms']:6d} atoms  {row['s']:7.3f} s {row['added_mb']:8.1f} MB added "
              f"(peak {row['peak_mb']:.0f} MB)")
    print(f"  {graphs[0]['atoms']} -> {graphs[-1]['atoms']} atoms: time "
          f"{graphs[-1]['s'] / graphs[0]['s']:.1f}x, added memory "
          f"{graphs[-1]['added_mb'] / max(graphs[0]['added_mb'], 0.1):.1f}x")

    print("ALIGNN-FF embedding of one cell (what --max-atoms bounds)")
    for k in [k for k in (5, 8, 10, 13, 17) if k <= args.embed_up_to]:
        row = in_fresh_process("embed", k)
        print(f"  {row['atoms']:6d} atoms  {row['s']:7.2f} s {row['added_mb']:8.1f} MB added "
              f"({row['added_mb'] / row['atoms']:.2f} MB/atom)")

    print("CrystalNN structure fingerprint of one cell (coverage)")
    for k in [k for k in (5, 8, 10, 13) if k <= args.fingerprint_up_to]:
        row = in_fresh_process("fingerprint", k)
        print(f"  {row['atoms']:6d} atoms  {row['s']:7.2f} s {row['added_mb']:8.1f} MB added")

    print("CDVAE property model (mp20) of one cell (what --max-atoms bounds for --model cdvae)")
    for k in [k for k in (5, 8, 10, 13) if k <= args.cdvae_up_to]:
        row = in_fresh_process("cdvae", k)
        print(f"  {row['atoms']:6d} atoms  {row['s']:7.2f} s {row['added_mb']:8.1f} MB added "
              f"({row['added_mb'] / row['atoms']:.2f} MB/atom)")

    if not args.skip_evaluate:
        print("crystal-metrics evaluate examples/mp20_test (+ one 10,648-atom cell) vs the example CSV")
        for with_large in (False, True):
            peak, seconds, summary = evaluate_peak(with_large)
            label = "with the large cell" if with_large else "examples only      "
            print(f"  {label}  peak {peak:6.0f} MB  {seconds:6.1f} s  {summary}")


if __name__ == "__main__":
    main()
