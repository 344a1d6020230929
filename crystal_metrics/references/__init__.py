"""Reference sets shipped with the package, named wherever a path is accepted: `mp20-test`,
`mp20-val`, `perov5-test`, `carbon24-test`.

Each is CDVAE's split as a gzipped CSV (the structures) and its statistics file, made by
`crystal-metrics stats` with the default extractor (ALIGNN-FF, default graph) and a fixed subset
of KID latents. This module is the one place that turns a name into a file: the structure
readers ask for the structures, the feature source for the statistics (see `resolve`). A path
that exists wins over a name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..weights import sha256_file

DATA = Path(__file__).resolve().parent / "data"
#: What the package data may weigh in all (checked by a test), bytes.
SIZE_BUDGET = 15 * 10 ** 6


@dataclass(frozen=True)
class Reference:
    """A shipped reference set.

    Attributes:
        name: its name on the command line (`mp20-test`).
        dataset: CDVAE's dataset (coverage cutoffs, property model): mp20, perov5, carbon24.
        split: test or val.
        n: number of structures.
        source: where the structures come from and whom to cite.
    """

    name: str
    dataset: str
    split: str
    n: int
    source: str

    @property
    def structures(self) -> Path:
        """The CDVAE-style CSV (.csv.gz, a `cif` column, named by `material_id`)."""
        return DATA / f"{self.name}.csv.gz"

    @property
    def statistics(self) -> Path:
        """The statistics file (.npz) of the default extractor."""
        return DATA / f"{self.name}.npz"

    def files(self) -> list[tuple[Path, int, str]]:
        """(path, size in bytes, sha256 hex) of its two files."""
        return [(path, path.stat().st_size, sha256_file(path))
                for path in (self.structures, self.statistics)]


_MP20 = ("Materials Project (CC BY 4.0), CDVAE's MP-20 split: cite Jain et al., APL Mater. 1, "
         "011002 (2013) and Xie et al., ICLR 2022 (CDVAE)")
REFERENCES = {ref.name: ref for ref in (
    Reference("mp20-test", "mp20", "test", 9046, _MP20),
    Reference("mp20-val", "mp20", "val", 9047, _MP20),
    Reference("perov5-test", "perov5", "test", 3785,
              "CDVAE's Perov-5 split of the Computational Materials Repository's cubic "
              "perovskites: cite Castelli et al., Energy Environ. Sci. 5, 9034 and 5814 (2012) "
              "and Xie et al., ICLR 2022"),
    Reference("carbon24-test", "carbon24", "test", 2030,
              "CDVAE's Carbon-24 split of AIRSS carbon at 10 GPa (Pickard, Materials Cloud "
              "2020.0026/v1): cite it and Xie et al., ICLR 2022"),
)}


def named(source) -> Reference | None:
    """The shipped reference `source` names (a str or path equal to a name that is not an
    existing path), else None."""
    if not isinstance(source, (str, os.PathLike)) or str(source) not in REFERENCES:
        return None
    return None if Path(source).exists() else REFERENCES[str(source)]


def resolve(source, need: str):
    """`source`, or the file of the reference it names: its structures (`need="structures"`,
    for commands that read structures) or its statistics file (`need="statistics"`, where
    statistics suffice)."""
    if need not in ("structures", "statistics"):
        raise ValueError(f"need is 'structures' or 'statistics', not {need!r}")
    reference = named(source)
    return source if reference is None else getattr(reference, need)


__all__ = ["REFERENCES", "Reference", "named", "resolve"]
