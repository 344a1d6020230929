"""Per-structure predictions of CDVAE's property models, through the embedding cache.

A prediction is stored as an entry with an empty latent and the value in the energy column,
under `cache_key(model)`: the model's weights and the pymatgen version (CrystalNN lives in
pymatgen, so an upgrade computes the graphs afresh). Failures are not stored.
"""
from __future__ import annotations

import numpy as np

from ..cdvae import Predictions, PropertyModel
from ..crystal import Crystal
from ..progress import progress as progress_display
from .cache import EmbeddingCache, structure_hash

#: First field of `cache_key()`, telling these predictions from embeddings in the cache.
CACHE_KIND = "cdvae-property"
#: Structures predicted between two writes to the cache.
CACHE_CHUNK = 256


def cache_key(model: PropertyModel) -> str:
    from pymatgen.core import __version__ as pymatgen_version

    return f"{CACHE_KIND}:{model.name}-{model.sha256[:12]}:pymatgen-{pymatgen_version}"


def cached_predictions(crystals: list[Crystal], model: PropertyModel,
                       cache: EmbeddingCache | None = None, workers: int | None = None,
                       progress: bool | None = None) -> Predictions:
    """`model.predict(crystals)`, reading what `cache` holds and storing the new predictions
    every `CACHE_CHUNK` structures (an interrupted run keeps the finished chunks)."""
    crystals = list(crystals)
    values, failures = np.full(len(crystals), np.nan), {}
    hashes = [structure_hash(c) for c in crystals]
    key = cache_key(model) if cache is not None else ""
    found = cache.get(key, hashes) if cache is not None else {}
    for i, h in enumerate(hashes):
        if h in found:
            values[i] = found[h][1]
    missing = [i for i, h in enumerate(hashes) if h not in found]
    with progress_display(len(missing), f"property ({model.name})", "struct", progress) as bar:
        for start in range(0, len(missing), CACHE_CHUNK):
            chunk = missing[start:start + CACHE_CHUNK]
            new = model.predict([crystals[i] for i in chunk], workers=workers, progress=False)
            values[chunk] = new.values
            failures |= {chunk[i]: reason for i, reason in new.failures.items()}
            done = [i for i in range(len(chunk)) if i not in new.failures]
            if cache is not None and done:
                cache.put(key, [hashes[chunk[i]] for i in done], np.zeros((len(done), 0)),
                          new.values[done])
            bar.update(len(chunk))
    return Predictions(values, failures)
