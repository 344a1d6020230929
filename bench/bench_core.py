"""Validity + density EMD on MP-20 test against a per-structure pymatgen baseline, same run.

    python bench/bench_core.py [--data ../shared/data/mp_20]

Ours: `read_structures` (gemmi, both cores) + `validity` + `density_emd`, test vs val.
Baseline: pymatgen `Structure.from_str` per CIF, `distance_matrix` per structure (CDVAE's check,
which misses an atom's own images), uncached SMACT 4 validity (smact14, on both sides), `Structure.density`.
Prints throughput of both (structures/s), their ratio and the agreement of the results.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _data import MP20, mp20_split
from scipy.stats import wasserstein_distance

import crystal_metrics

#: The baseline is SMACT 4's own smact_validity, so both sides use its smact14 table.
OXIDATION_STATES = "smact14"


def ours(test: Path, val: Path) -> dict:
    gen = crystal_metrics.read_structures(test)
    ref = crystal_metrics.read_structures(val)
    result = crystal_metrics.validity(gen, oxidation_states=OXIDATION_STATES)
    return {"n": len(gen) + len(ref), "validity": result.fractions()["overall"],
            "density_emd": crystal_metrics.density_emd(gen, ref)}


def baseline(test: Path, val: Path) -> dict:
    from pymatgen.core import Structure
    from smact.screening import smact_validity

    def parse(path):
        return [Structure.from_str(c, fmt="cif") for c in pd.read_csv(path).cif]

    gen, ref = parse(test), parse(val)
    valid = []
    for s in gen:
        distances = s.distance_matrix + np.eye(len(s)) * 10.0
        structural = distances.min() >= 0.5 and s.volume >= 0.1
        composition = s.composition
        valid.append(structural and smact_validity(composition, oxidation_states_set=OXIDATION_STATES))
    density_emd = wasserstein_distance([s.density for s in gen], [s.density for s in ref])
    return {"n": len(gen) + len(ref), "validity": float(np.mean(valid)), "density_emd": density_emd}


def timed(fn, *args) -> tuple[dict, float]:
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MP20, help="folder with MP-20 test and val")
    args = parser.parse_args()
    test, val = mp20_split(args.data, "test"), mp20_split(args.data, "val")
    warnings.filterwarnings("ignore")
    ours_result, ours_s = timed(ours, test, val)
    base_result, base_s = timed(baseline, test, val)
    n = ours_result["n"]
    print(f"structures read (test + val): {n}")
    print(f"ours:     {ours_s:7.2f} s  {n / ours_s:8.0f} structures/s  {ours_result}")
    print(f"baseline: {base_s:7.2f} s  {n / base_s:8.0f} structures/s  {base_result}")
    print(f"speed-up: {base_s / ours_s:.1f}x")
    assert ours_result["n"] == base_result["n"]
    assert abs(ours_result["density_emd"] - base_result["density_emd"]) < 1e-6
    assert abs(ours_result["validity"] - base_result["validity"]) < 1e-9


if __name__ == "__main__":
    main()
