"""CDVAE's structure and composition fingerprints (matminer, the `[coverage]` extra).

Structure: the CrystalNN site fingerprint (`CrystalNNFingerprint.from_preset("ops")`, 61
order parameters) averaged over the sites of the cell. Composition: the Magpie fingerprint
(`ElementProperty.from_preset("magpie")`, 132 statistics of elemental properties), without
matminer's imputation of missing elemental data (CDVAE's matminer had none), standardised with
CDVAE's fixed `CompScaler` means and standard deviations, missing values then set to 0.

With a `StructureCache`, the raw (unnormalised) fingerprints of each structure are stored as one
float64 vector of 61 + 132 values under `cache_key()`; failures are not stored.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..crystal import Crystal
from ..errors import MissingExtraError
from .cache import StructureCache, cached_map

STRUCTURE_DIM = 61
COMPOSITION_DIM = 132
#: Below this many structures, fingerprints are computed in this process.
PARALLEL_MIN_STRUCTURES = 8
#: First field of `cache_key()`, telling fingerprints from embeddings in the cache.
CACHE_KIND = "cdvae-fingerprints"
_SCALER = Path(__file__).parent / "data" / "cdvae_comp_scaler.json"


@lru_cache(maxsize=1)
def featurizers():
    """(CrystalNN "ops" site featurizer, Magpie composition featurizer), built once."""
    try:
        from matminer.featurizers.composition.composite import ElementProperty
        from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
    except ImportError:
        raise MissingExtraError("coverage needs matminer: pip install 'crystal-metrics[coverage]'"
                                ) from None
    return (CrystalNNFingerprint.from_preset("ops"),
            ElementProperty.from_preset("magpie", impute_nan=False))


def structure_fingerprint(crystal: Crystal) -> np.ndarray:
    """Mean CrystalNN site fingerprint over the sites of the cell, shape (61,)."""
    site_featurizer, _ = featurizers()
    structure = crystal.to_pymatgen()
    with warnings.catch_warnings():  # CrystalNN warns about missing oxidation states
        warnings.simplefilter("ignore")
        sites = [site_featurizer.featurize(structure, i) for i in range(len(structure))]
    return np.mean(np.asarray(sites, dtype=np.float64), axis=0)


def composition_fingerprint(crystal: Crystal) -> np.ndarray:
    """Magpie fingerprint of the composition, shape (132,); NaN where elemental data is missing."""
    _, composition_featurizer = featurizers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(composition_featurizer.featurize(crystal.to_pymatgen().composition),
                          dtype=np.float64)


def cache_key() -> str:
    """Cache key of the raw fingerprints: the featurizers and the matminer and pymatgen versions
    (CrystalNN lives in pymatgen), so that an upgrade computes them afresh."""
    import matminer
    from pymatgen.core import __version__ as pymatgen_version

    return (f"{CACHE_KIND}:crystalnn-ops+magpie:matminer-{matminer.__version__}:"
            f"pymatgen-{pymatgen_version}")


@lru_cache(maxsize=1)
def _scaler() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(_SCALER.read_text())
    return np.asarray(data["means"]), np.asarray(data["stds"])


def normalise_composition(fingerprints: np.ndarray) -> np.ndarray:
    """CDVAE's CompScaler: (x - mean) / std with its fixed constants, NaN -> 0; shape (n, 132)."""
    means, stds = _scaler()
    return np.nan_to_num((np.asarray(fingerprints, np.float64) - means) / stds, nan=0.0)


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of the structures of a set that could be fingerprinted.

    Attributes:
        structure: (m, 61) mean CrystalNN site fingerprints.
        composition: (m, 132) normalised Magpie fingerprints.
        indices: (m,) positions of these structures in the input list.
        failures: {position in the input list: reason} of the others.
    """

    structure: np.ndarray
    composition: np.ndarray
    indices: np.ndarray
    failures: dict[int, str]

    def subset(self, positions) -> Fingerprints:
        """The fingerprints of those structures at `positions` (of the input list) that have
        one, in ascending order of position; no failures."""
        positions = np.unique(np.asarray(positions, dtype=int))
        positions = positions[np.isin(positions, self.indices)]
        rows = np.searchsorted(self.indices, positions)
        return Fingerprints(self.structure[rows], self.composition[rows], positions, {})


def _fingerprint_one(crystal: Crystal) -> np.ndarray | str:
    """Raw structure (61) and composition (132) fingerprints as one vector, or why they failed."""
    try:
        return np.concatenate([structure_fingerprint(crystal), composition_fingerprint(crystal)])
    except Exception as exc:  # noqa: BLE001 - CrystalNN raises many types on unusual geometries
        first_line = str(exc).strip().splitlines()[:1]
        return ": ".join(["fingerprint failed", type(exc).__name__, *first_line])


def fingerprints(crystals: list[Crystal], workers: int | None = None,
                 progress: bool | None = None, cache: StructureCache | None = None
                 ) -> Fingerprints:
    """Structure and composition fingerprints of `crystals`, in `workers` forked processes
    (default: all usable CPUs); a structure whose fingerprint fails is recorded in `failures`.

    With `cache`, fingerprints found there are not computed again, and the others are stored
    every `cache.CACHE_CHUNK` structures (an interrupted run keeps the finished chunks).
    """
    featurizers()  # import matminer once, before forking
    results = cached_map(_fingerprint_one, crystals, cache_key(), cache, workers=workers,
                         progress=progress, desc="fingerprints",
                         min_parallel=PARALLEL_MIN_STRUCTURES)
    indices = [i for i, r in enumerate(results) if not isinstance(r, str)]
    raw = np.array([results[i] for i in indices]).reshape(-1, STRUCTURE_DIM + COMPOSITION_DIM)
    return Fingerprints(raw[:, :STRUCTURE_DIM], normalise_composition(raw[:, STRUCTURE_DIM:]),
                        np.array(indices, int),
                        {i: r for i, r in enumerate(results) if isinstance(r, str)})
