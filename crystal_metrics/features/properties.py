"""Per-structure predictions of CDVAE's property models, through the per-structure cache.

A prediction is stored as an entry with an empty latent and the value in the energy column,
under `cache_key(model)`: the model's weights and the pymatgen version (CrystalNN lives in
pymatgen, so an upgrade computes the graphs afresh). Failures are not stored.
"""
from __future__ import annotations

import numpy as np

from ..cdvae import Predictions, PropertyModel
from ..crystal import Crystal
from .cache import StructureCache, cached_map

#: First field of `cache_key()`, telling these predictions from embeddings in the cache.
CACHE_KIND = "cdvae-property"


def cache_key(model: PropertyModel) -> str:
    from pymatgen.core import __version__ as pymatgen_version

    return f"{CACHE_KIND}:{model.name}-{model.sha256[:12]}:pymatgen-{pymatgen_version}"


def cached_predictions(crystals: list[Crystal], model: PropertyModel,
                       cache: StructureCache | None = None, workers: int | None = None,
                       progress: bool | None = None) -> Predictions:
    """`model.predict(crystals)`, reading what `cache` holds and storing the new predictions
    every `cache.CACHE_CHUNK` structures (an interrupted run keeps the finished chunks)."""

    def predict(chunk: list[Crystal]) -> list:
        new = model.predict(chunk, workers=workers, progress=False)
        return [new.failures.get(i, float(new.values[i])) for i in range(len(chunk))]

    results = cached_map(predict, crystals, cache_key(model), cache, holds="value", batched=True,
                         progress=progress, desc=f"property ({model.name})")
    values = np.array([np.nan if isinstance(r, str) else r for r in results], np.float64)
    return Predictions(values, {i: r for i, r in enumerate(results) if isinstance(r, str)})
