"""The fixed evaluation protocol of a GemsDiff checkpoint (docs/results.md, issue 11).

    python docs/figures/model_protocol.py --test ../shared/data/mp_20/test.csv.gz \
        --out runs/protocol [--checkpoint CKPT] [--first 1000] [--steps 100] [--step-lr 1e-5]
    python docs/figures/model_protocol.py --test ../shared/data/mp_20/test.csv.gz \
        --out runs/protocol_naive --gen runs/naive_first1000     # score samples made elsewhere

The first N rows of MP-20 test, one sample per composition, seed 0, on the CPU (2 threads);
writes OUT/gen (the samples, by ``gemsdiff-sample``), OUT/first.csv.gz (the N references) and
OUT/protocol.json with: CSP match rate and RMSE against the N references (DiffCSP tolerances,
``crystal-metrics match``), structural validity, median shortest interatomic distance over
MP-20 test's 2.44 Å, quartiles of each sample's volume per atom over its test structure's,
density EMD, ALIGNN-FF formation-energy EMD and FAD against all of test
(``crystal-metrics evaluate``), and the sampling time.
"""
import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import crystal_metrics as cm
from gemsdiff_model.sample import DEFAULT_CHECKPOINT, run_sampling

#: median shortest interatomic distance of all 9,046 MP-20 test structures (Å)
TEST_MEDIAN_MIN_DISTANCE = 2.44


def volume_ratios(gen: cm.StructureSet, reference: cm.StructureSet, manifest: Path) -> np.ndarray:
    """Volume per atom of each sample over that of the reference structure of its row (the
    manifest's source_id, a material_id of the reference)."""
    rows = pd.read_csv(manifest)
    samples = dict(zip(gen.names, gen.crystals))
    references = dict(zip(reference.names, reference.crystals))

    def per_atom(c: cm.Crystal) -> float:
        return c.volume / len(c.numbers)

    return np.array([per_atom(samples[name]) / per_atom(references[source])
                     for name, source in zip(rows["name"], rows["source_id"])])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", required=True, help="MP-20 test.csv.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--step-lr", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gen", type=Path, help="score this sample folder (its manifest.csv "
                        "names the test rows) instead of sampling")
    parser.add_argument("--skip-features", action="store_true",
                        help="no ALIGNN-FF (FAD, energy EMD): quicker, for ablations")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    first = args.out / "first.csv.gz"
    with gzip.open(args.test, "rt") as handle:
        pd.read_csv(handle).head(args.first).to_csv(first, index=False)

    if args.gen:
        folder, result = args.gen, {"gen": str(args.gen), "first": args.first}
    else:
        folder = args.out / "gen"
        start = time.perf_counter()
        run_sampling(args.checkpoint, folder, from_csv=str(first), steps=args.steps,
                     step_lr=args.step_lr, seed=0, device="cpu", threads=args.threads,
                     overwrite=True, progress=False)
        result = {"checkpoint": args.checkpoint, "first": args.first, "steps": args.steps,
                  "step_lr": args.step_lr, "threads": args.threads,
                  "sampling_s": round(time.perf_counter() - start, 1)}

    gen = cm.read_structures(folder, progress=False)
    matched = cm.match(folder, first)
    result.update(match_rate=matched.match_rate, rmse=matched.rmse)
    valid = cm.validity(gen)
    median = float(np.median(valid.min_distance))
    ratios = volume_ratios(gen, cm.read_structures(first, progress=False), folder / "manifest.csv")
    result.update(structural_validity=float(valid.structural.mean()),
                  median_min_distance_A=median,
                  median_min_distance_ratio=median / TEST_MEDIAN_MIN_DISTANCE,
                  density_emd=cm.density_emd(gen, args.test),
                  volume_ratio_quartiles=np.quantile(ratios, [0.25, 0.5, 0.75]).tolist())
    if not args.skip_features:
        features = cm.FeatureSource(device="cpu", progress=False)
        gen_features, test_features = features(gen), features(args.test)
        result.update(energy_emd=cm.energy_emd(gen_features, test_features),
                      fad=cm.fad(gen_features, test_features)["fad"])
    (args.out / "protocol.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
