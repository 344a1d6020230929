"""Pure-PyTorch ALIGNN featurizer (no DGL).

Public API::

    ext = load_extractor()                 # ALIGNN-FF, fetched once via pip
    latents, e_per_atom = ext.embed(structures, batch_size=16, progress=True)
    e_form = formation_energy_per_atom([s.atomic_numbers for s in structures], e_per_atom)

``latents`` is float64 (N, ext.dim); energies are eV/atom.
"""

from crystal_metrics.alignn.featurizer import (
    Extractor,
    build_model,
    cgcnn_feature_table,
    formation_energy_per_atom,
    jarvis_elemental_energies,
    load_extractor,
)

__all__ = [
    "Extractor",
    "build_model",
    "cgcnn_feature_table",
    "formation_energy_per_atom",
    "jarvis_elemental_energies",
    "load_extractor",
]
