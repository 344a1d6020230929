"""Structure set -> `FeatureSet`: ALIGNN latents and energies, through the per-structure cache."""
from __future__ import annotations

import numpy as np

from ..crystal import Crystal
from ..failures import StructureFailure
from ..io import StructureSet
from ..metrics.distribution import densities, element_counts
from .cache import StructureCache, cached_map, structure_hash
from .statistics import ExtractorId, FeatureSet

#: Default `max_atoms` (--max-atoms): ALIGNN needs about 1 GB of memory per 1,000 atoms of a
#: structure (1.0 GB at 1,000 atoms, 2.1 GB at 2,197; measured in bench/bench_memory.py).
MAX_ATOMS = 1000


def split_by_size(structures: StructureSet, max_atoms: int | None,
                  memory: str = "ALIGNN needs about 1 GB of memory per 1,000 atoms"
                  ) -> tuple[StructureSet, list[StructureFailure]]:
    """The structures of at most `max_atoms` atoms (read errors kept), and a record naming each
    of the others, with `memory` as the reason for the limit (None: no limit)."""
    large = [too_large(c, max_atoms, memory) for c in structures.crystals]
    if not any(large):
        return structures, []
    kept = structures.subset([i for i, big in enumerate(large) if not big])
    left_out = [StructureFailure(name, big) for name, big in zip(structures.names, large) if big]
    return kept, left_out


def too_large(crystal: Crystal, max_atoms: int | None, memory: str) -> str | None:
    """Why `crystal` is left out, if it has more than `max_atoms` atoms (`memory`: why there is
    a limit), else None."""
    if max_atoms is None or crystal.n_atoms <= max_atoms:
        return None
    return (f"{crystal.n_atoms:,} atoms, more than --max-atoms {max_atoms:,}: left out ({memory}; "
            "raise --max-atoms to include it)")


def formation_energies(extractor, crystals: list[Crystal], outputs: np.ndarray) -> np.ndarray:
    """Formation energy per atom (eV/atom), shape (n,).

    An energy model (ALIGNN-FF, `kind == "atomwise"`) predicts total energy per atom: the
    composition-weighted JARVIS elemental reference energies are subtracted. A property model
    (classic ALIGNN such as `mp_e_form_alignn`) predicts formation energy itself.
    """
    from ..alignn import formation_energy_per_atom

    if extractor.config.kind != "atomwise":
        return np.asarray(outputs, dtype=np.float64)
    return formation_energy_per_atom([c.numbers for c in crystals], outputs)


def featurize(structures: StructureSet, extractor, cache: StructureCache | None = None,
              batch_size: int = 32, progress: bool | None = None,
              max_atoms: int | None = MAX_ATOMS) -> FeatureSet:
    """Embed every crystal of `structures` (cached ones are not embedded again) that has at most
    `max_atoms` atoms; the others are listed in `left_out`. The cache keeps each latent with the
    extractor's raw output (under the weights' sha256 and graph settings)."""
    structures, left_out = split_by_size(structures, max_atoms)
    crystals = structures.crystals

    def embed(chunk: list[Crystal]) -> list[tuple[np.ndarray, float]]:
        latents, outputs = extractor.embed(chunk, batch_size=batch_size, progress=False)
        outputs = np.asarray(outputs, np.float64).reshape(len(chunk), -1)[:, 0]
        return list(zip(latents, outputs))

    embedded = cached_map(embed, crystals, f"{extractor.sha256}:{extractor.id}", cache,
                          holds="pair", batched=True, progress=progress,
                          desc=f"embedding ({extractor.name})")
    latents = np.array([latent for latent, _ in embedded]).reshape(len(crystals), extractor.dim)
    outputs = np.array([output for _, output in embedded], np.float64)
    return FeatureSet(latents, formation_energies(extractor, crystals, outputs),
                      densities(crystals), element_counts(crystals), ExtractorId.of(extractor),
                      tuple(structures.errors), tuple(left_out), structure_keys(crystals))


def structure_keys(crystals: list[Crystal]) -> np.ndarray:
    """(n,) uint64: the first 64 bits of each crystal's structure hash (the key that chooses a
    statistics file's KID latents: independent of the order and split of the set)."""
    return np.array([int(structure_hash(c)[:16], 16) for c in crystals], np.uint64)
