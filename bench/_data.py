"""The data sets the benchmarks read: where they come from, and one sentence when they are missing.

Scripts run as `python bench/NAME.py`, so this folder is on the import path.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Default folder of MP-20: ../shared/data/mp_20 beside the repository (the development machines').
MP20 = ROOT.parent / "shared" / "data" / "mp_20"
SOURCE = ("MP-20 is CDVAE's split (test.csv, val.csv in data/mp_20 of "
          "https://github.com/txie-93/cdvae), to be put there as they are or gzipped")


def mp20_split(folder: Path, split: str) -> Path:
    """`folder/SPLIT.csv.gz`, else `folder/SPLIT.csv`; exits with one sentence if neither exists."""
    for name in (f"{split}.csv.gz", f"{split}.csv"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    sys.exit(f"error: {Path(folder) / f'{split}.csv.gz'} not found (pass another folder with "
             f"--data); {SOURCE}.")


def require(path: Path, what: str, option: str = "--data") -> Path:
    """`path` if it exists; else exits with one sentence naming `what` it should hold."""
    if not Path(path).exists():
        sys.exit(f"error: {path} not found ({what}; pass another with {option}); {SOURCE}.")
    return Path(path)
