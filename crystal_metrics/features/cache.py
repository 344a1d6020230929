"""On-disk cache of what is computed per structure, keyed by (what, structure hash).

One SQLite file (`embeddings.sqlite` in the cache folder) holds ALIGNN embeddings
(`embedding.py`), coverage fingerprints (`fingerprints.py`), space groups (`space_groups.py`) and
CDVAE's property predictions (`properties.py`), each under its own key, through one loop
(`cached_map`): scoring many generated sets against one reference computes the reference once.
"""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import numpy as np

from ..cachedir import cache_dir
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


#: Structures computed between two writes to the cache (an interrupted run loses less).
CACHE_CHUNK = 256
#: What a `cached_map` function returns per structure (see there).
HOLDS = ("vector", "value", "pair")


class StructureCache:
    """Per (key, structure hash): a float64 vector (stored exactly, NaN included; an embedding, a
    fingerprint...) and an optional float value (a model output or prediction). The SQLite
    columns keep their first names: `extractor` (the key), `latent` and `energy`."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, key: str, hashes: list[str]) -> dict[str, tuple[np.ndarray, float]]:
        """The entries cached under `key` among `hashes` (structure hashes):
        {hash: (vector (d,), value)}, value NaN when none was stored."""
        found = {}
        with self._connect() as db:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start:start + 500]
                rows = db.execute(
                    "SELECT structure, latent, energy FROM embeddings WHERE extractor = ? AND "
                    f"structure IN ({','.join('?' * len(chunk))})", [key, *chunk])
                for structure, vector, value in rows:
                    found[structure] = (np.frombuffer(vector, dtype=np.float64),
                                        np.nan if value is None else value)  # NaN is kept as NULL
        return found

    def counts(self) -> dict[str, int]:
        """Number of cached structures per key."""
        with self._connect() as db:
            return dict(db.execute("SELECT extractor, COUNT(*) FROM embeddings GROUP BY extractor"))

    def put(self, key: str, hashes: list[str], vectors: np.ndarray,
            values: np.ndarray | None = None) -> None:
        """Store vectors (n, d) and values (n,; None: none, read back as NaN) of the structures
        `hashes` under `key`, in one transaction."""
        values = [None] * len(hashes) if values is None else [float(v) for v in values]
        rows = [(key, structure, np.asarray(vector, np.float64).tobytes(), value)
                for structure, vector, value in zip(hashes, vectors, values)]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)


def default_cache() -> StructureCache:
    """The cache file `embeddings.sqlite` of the crystal-metrics cache folder."""
    return StructureCache(cache_dir() / "embeddings.sqlite")


def cached_map(function, crystals: list[Crystal], key: str, cache: StructureCache | None, *,
               holds: str = "vector", batched: bool = False, workers: int | None = None,
               progress: bool | None = None, desc: str = "", min_parallel: int = 8) -> list:
    """`[function(c) for c in crystals]`, through `cache` under `key`.

    `function` returns, per crystal, what `holds` says, or a str on failure (the reason):
    "vector", a 1-D float64 array (fingerprints, space groups); "value", a float (a model's
    prediction, kept in the cache's value column); "pair", a (vector, value) pair (a latent and a
    model output). With `batched`, `function(list_of_crystals)` returns that list for a whole
    chunk at once (a model's batched call, run in this process); else it is called crystal by
    crystal, in `workers` forked processes from `min_parallel` crystals on. Values found in
    `cache` are not computed again; the others are stored every `CACHE_CHUNK` crystals, so an
    interrupted run keeps its finished chunks. Failures are not stored (computed again next
    time).
    """
    if holds not in HOLDS:
        raise ValueError(f"holds must be one of {HOLDS}, not {holds!r}")
    crystals = list(crystals)
    hashes = [structure_hash(c) for c in crystals]
    found = cache.get(key, hashes) if cache is not None else {}
    results: list = [_from_cache(found[h], holds) if h in found else None for h in hashes]
    missing = [i for i, r in enumerate(results) if r is None]
    with progress_display(len(missing), desc, "struct", progress) as bar:
        for start in range(0, len(missing), CACHE_CHUNK):
            part = missing[start:start + CACHE_CHUNK]
            todo = [crystals[i] for i in part]
            new = function(todo) if batched else parallel_map(
                function, todo, workers=workers, min_items=min_parallel, progress=False)
            for i, result in zip(part, new):
                results[i] = result
            done = [(hashes[i], r) for i, r in zip(part, new) if not isinstance(r, str)]
            if cache is not None and done:
                cache.put(key, [h for h, _ in done], *_to_cache([r for _, r in done], holds))
            bar.update(len(part))
    return results


def _from_cache(entry: tuple[np.ndarray, float], holds: str):
    vector, value = entry
    return {"vector": vector, "value": value, "pair": entry}[holds]


def _to_cache(results: list, holds: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(vectors (n, d), values (n,) or None) to store for `results`."""
    if holds == "vector":
        return np.array(results), None
    if holds == "value":
        return np.zeros((len(results), 0)), np.array(results, np.float64)
    return np.array([v for v, _ in results]), np.array([e for _, e in results], np.float64)
