"""Cost of `evaluate --report` against `evaluate` alone, in the same run.

    python bench/bench_report.py [--gen ../shared/data/mp_20/val.csv.gz] [--ref ../shared/data/mp_20/test.csv.gz]

Default GEN/REF: MP-20 val against MP-20 test when ../shared/data is there, else the example
set against the example CSV. `evaluate` runs twice (the first fills the embedding cache, the
second is timed); then the report is written into a temporary folder. Prints both times, their
ratio and the page size; no timed asserts.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from _data import MP20

from crystal_metrics import FeatureSource, evaluate, write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = MP20


def main():
    parser = argparse.ArgumentParser()
    have_data = (DATA / "val.csv.gz").exists()
    parser.add_argument("--gen", default=DATA / "val.csv.gz" if have_data else ROOT / "examples/mp20_test")
    parser.add_argument("--ref", default=DATA / "test.csv.gz" if have_data
                        else ROOT / "examples/mp20_val_sample.csv")
    args = parser.parse_args()
    features = FeatureSource(progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(args.gen, args.ref, features)  # fills the embedding cache
        start = time.perf_counter()
        evaluation = evaluate(args.gen, args.ref, features)
        evaluate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        page = write_report(Path(folder) / "report", evaluation, (str(args.gen), str(args.ref)))
        report_s = time.perf_counter() - start
        size = page.stat().st_size / 2 ** 10
    print(f"GEN {args.gen} ({evaluation['n_structures']}), REF {args.ref}")
    print(f"evaluate (embeddings cached): {evaluate_s:.1f} s")
    print(f"write_report:                 {report_s:.2f} s  ({report_s / evaluate_s:.3f} x evaluate)")
    print(f"index.html:                   {size:.0f} KiB")


if __name__ == "__main__":
    main()
