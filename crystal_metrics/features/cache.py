"""On-disk cache of per-structure embeddings, keyed by structure hash and extractor weights.

One SQLite file; scoring many generated sets against one reference embeds the reference once.
Coverage fingerprints (`fingerprints.py`), space groups (`metrics/symmetry.py`) and CDVAE's
property predictions (`properties.py`) are stored in it too, under their own keys (`cached_map`).
"""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from ..crystal import Crystal
from ..parallel import parallel_map
from ..progress import progress as progress_display

_SCHEMA = """CREATE TABLE IF NOT EXISTS embeddings (
    extractor TEXT NOT NULL, structure TEXT NOT NULL, latent BLOB NOT NULL, energy REAL,
    PRIMARY KEY (extractor, structure))"""


def structure_hash(crystal: Crystal) -> str:
    """sha256 of the lattice, coordinates and species exactly as stored."""
    digest = hashlib.sha256()
    for array in (crystal.lattice, crystal.frac_coords, crystal.numbers):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Latents (float64, stored exactly, NaN included) and energies (eV/atom, optional) per
    (extractor key, structure hash)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, extractor: str, keys: list[str]) -> dict[str, tuple[np.ndarray, float]]:
        """The cached entries among `keys`: {key: (latent (d,), energy)}."""
        found = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = db.execute(
                    "SELECT structure, latent, energy FROM embeddings WHERE extractor = ? AND "
                    f"structure IN ({','.join('?' * len(chunk))})", [extractor, *chunk])
                for key, latent, energy in rows:
                    found[key] = (np.frombuffer(latent, dtype=np.float64),
                                  np.nan if energy is None else energy)  # SQLite keeps NaN as NULL
        return found

    def counts(self) -> dict[str, int]:
        """Number of cached structures per extractor key."""
        with self._connect() as db:
            return dict(db.execute("SELECT extractor, COUNT(*) FROM embeddings GROUP BY extractor"))

    def put(self, extractor: str, keys: list[str], latents: np.ndarray,
            energies: np.ndarray | None = None) -> None:
        """Store latents (n, d) and energies (n,; None: none, read back as NaN) for `keys`, in one
        transaction."""
        energies = [None] * len(keys) if energies is None else [float(e) for e in energies]
        rows = [(extractor, key, np.asarray(latent, np.float64).tobytes(), energy)
                for key, latent, energy in zip(keys, latents, energies)]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)


def default_cache() -> EmbeddingCache:
    """The cache file `embeddings.sqlite` of the crystal-metrics cache folder."""
    from ..cachedir import cache_dir

    return EmbeddingCache(cache_dir() / "embeddings.sqlite")


def cached_map(function, crystals: list[Crystal], key: str, cache: EmbeddingCache | None, *,
               workers: int | None = None, progress: bool | None = None, desc: str = "",
               chunk: int = 256, min_parallel: int = 8, batched: bool = False,
               scalar: bool = False) -> list:
    """`[function(c) for c in crystals]` for a `function` that returns a 1-D float64 array (with
    `scalar`, a float, kept in the cache's energy column) or, on failure, a str (the reason); with
    `batched`, `function(list_of_crystals)` returns that list for a whole chunk at once (a
    model's batched call, which parallelises itself). Values found in `cache` under `key` are not
    computed again; the others are computed (one by one in `workers` forked processes from
    `min_parallel` structures on, unless `batched`) and stored every `chunk` structures, so an
    interrupted run keeps its finished chunks. Failures are not stored (computed again next
    time)."""
    crystals = list(crystals)
    hashes = [structure_hash(c) for c in crystals]
    found = cache.get(key, hashes) if cache is not None else {}
    column = 1 if scalar else 0  # (latent, energy)
    results: list = [found[h][column] if h in found else None for h in hashes]
    missing = [i for i, r in enumerate(results) if r is None]
    with progress_display(len(missing), desc, "struct", progress) as bar:
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            todo = [crystals[i] for i in part]
            new = function(todo) if batched else parallel_map(
                function, todo, workers=workers, min_items=min_parallel, progress=False)
            for i, result in zip(part, new):
                results[i] = result
            done = [(hashes[i], r) for i, r in zip(part, new) if not isinstance(r, str)]
            if cache is not None and done:
                keys, values = [h for h, _ in done], np.array([v for _, v in done])
                if scalar:
                    cache.put(key, keys, np.zeros((len(done), 0)), values)
                else:
                    cache.put(key, keys, values)
            bar.update(len(part))
    return results
