"""Set-level scores that need a feature extractor: FAD, KID, energy EMD, and `evaluate`.

GEN and REF are anything `read_structures` accepts or a statistics file (`.npz`, made by
`crystal-metrics stats`); the extractor is loaded only if a side has to be embedded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from .api import labelled_errors, named_errors
from .errors import CrystalMetricsError, TooFewStructuresError
from .features import EmbeddingCache, FeatureStatistics
from .features.cache import default_cache
from .features.embedding import MAX_ATOMS, featurize, split_by_size
from .io import StructureSet, read_structures
from .metrics.distribution import emd
from .metrics.frechet import frechet_distance
from .metrics.kid import kernel_distance
from .metrics.validity import ValidityResult, validity


class SmallSampleWarning(UserWarning):
    """A set is small compared with the feature dimension d: FAD is biased upward (and at d
    structures or fewer the covariance is rank-deficient)."""


def is_statistics_file(source) -> bool:
    return isinstance(source, (str, Path)) and str(source).lower().endswith(".npz")


class FeatureSource:
    """Turns sets or statistics files into `FeatureStatistics` with one extractor.

    Args:
        weights: None (ALIGNN-FF), an ALIGNN checkpoint folder or zip, or a URL.
        device: torch device; default CUDA when available.
        cache: use the on-disk embedding cache (in the crystal-metrics cache folder).
        batch_size: structures per forward pass.
        progress: show progress bars (default: on a terminal).
        exact_graph: build alignn's graph bit for bit, neighbour shells split by rounding noise
            (not invariant to rotation, translation or supercells; FADs are not comparable to
            the default's).
        max_atoms: structures with more atoms are not embedded but listed in `left_out` (the
            embedding needs about 1 GB of memory per 1,000 atoms); None: no limit.
    """

    def __init__(self, weights=None, device=None, cache: bool = True, batch_size: int = 32,
                 progress: bool | None = None, exact_graph: bool = False,
                 max_atoms: int | None = MAX_ATOMS):
        self.weights, self.device, self.use_cache = weights, device, cache
        self.batch_size, self.progress, self.exact_graph = batch_size, progress, exact_graph
        self.max_atoms = max_atoms

    @cached_property
    def extractor(self):
        from .alignn import load_extractor

        if self.exact_graph:
            return load_extractor(self.weights, device=self.device, shell_tol=0.0)
        return load_extractor(self.weights, device=self.device)

    @cached_property
    def cache(self) -> EmbeddingCache | None:
        return default_cache() if self.use_cache else None

    def __call__(self, source) -> FeatureStatistics:
        if isinstance(source, FeatureStatistics):
            return source
        if is_statistics_file(source):
            return FeatureStatistics.load(source)
        structures = read_structures(source, progress=self.progress)  # a StructureSet passes through
        if not len(structures):
            raise TooFewStructuresError(f"no readable structures in {source}",
                                        {"unreadable": [e.as_dict() for e in structures.errors]})
        return featurize(structures, self.extractor, self.cache, self.batch_size, self.progress,
                         self.max_atoms)


def feature_pair(gen, ref, features: FeatureSource | None = None
                 ) -> tuple[FeatureStatistics, FeatureStatistics]:
    """Features of GEN and REF, refusing to mix extractors."""
    features = features or FeatureSource()
    gen_stats, ref_stats = features(gen), features(ref)
    gen_stats.check_same_extractor(ref_stats)
    return gen_stats, ref_stats


def feature_scores(gen: FeatureStatistics, ref: FeatureStatistics, kid_subsets: int = 100,
                   kid_subset_size: int = 1000) -> dict:
    """FAD, KID and energy EMD of two feature sets of the same extractor (JSON fields)."""
    gen.check_same_extractor(ref)
    for label, stats in (("GEN", gen), ("REF", ref)):
        if stats.n < 2:
            others = [f"{k} {what}" for k, what in ((len(stats.errors), "unreadable"),
                                                    (len(stats.left_out), "too large")) if k]
            raise TooFewStructuresError(
                f"{label} has {stats.n} usable structure{'' if stats.n == 1 else 's'}"
                + (f" ({', '.join(others)}: listed above)" if others else "")
                + "; FAD and KID need at least 2 (thousands for a meaningful value)",
                {"unreadable": named_errors(label.lower(), stats.errors),
                 "not embedded": named_errors(label.lower(), stats.left_out)})
        d = stats.extractor.dim
        if stats.n <= d:
            warnings.warn(f"{label} has {stats.n} structures, fewer than d + 1 = {d + 1}: its "
                          "covariance is rank-deficient and FAD is biased upward; use thousands "
                          "of structures", SmallSampleWarning, stacklevel=3)
        elif stats.n < 2 * d:
            warnings.warn(f"{label} has {stats.n} structures, fewer than 2 × {d}: FAD is biased "
                          "upward at this size; use thousands of structures", SmallSampleWarning,
                          stacklevel=3)
    kid, kid_std, kid_m = kernel_distance(gen.features, ref.features, kid_subsets, kid_subset_size)
    left_out = labelled_errors(gen.left_out, ref.left_out)
    return {"fad": frechet_distance(*gen.gaussian, *ref.gaussian), "n_gen": gen.n, "n_ref": ref.n,
            "extractor": gen.extractor.as_dict(), "kid": kid, "kid_std": kid_std,
            "kid_subset_size": kid_m, "n_not_embedded": len(left_out), "not_embedded": left_out,
            "energy_emd": emd(_finite_energies("GEN", gen), _finite_energies("REF", ref))}


class MissingEnergyWarning(UserWarning):
    """Some structures have no formation energy (an element without elemental reference)."""


def _finite_energies(label: str, stats: FeatureStatistics):
    """The finite formation energies (eV/atom) of a set, warning about the others: ALIGNN-FF has
    no elemental reference energy for Po, At, Rn, Fr and Ra."""
    finite = np.isfinite(stats.energies)
    if not finite.all():
        warnings.warn(f"{label}: {int((~finite).sum())} of {stats.n} structures have no formation "
                      "energy (an element without elemental reference energy); the energy EMD "
                      "leaves them out", MissingEnergyWarning, stacklevel=3)
    if not finite.any():
        raise CrystalMetricsError(f"{label} has no structure with a formation energy")
    return stats.energies[finite]


def fad(gen, ref, features: FeatureSource | None = None) -> dict:
    """Fréchet ALIGNN Distance between GEN and REF, with KID and the extractor's identity.

    Returns {"fad", "n_gen", "n_ref", "extractor": {name, sha256, dim}, "kid", "kid_std" (None
    below 4 structures), "kid_subset_size", "n_not_embedded", "not_embedded"}.
    """
    scores = feature_scores(*feature_pair(gen, ref, features))
    del scores["energy_emd"]
    return scores


def energy_emd(gen, ref, features: FeatureSource | None = None) -> float:
    """EMD between the formation-energy-per-atom distributions of GEN and REF, eV/atom."""
    gen_stats, ref_stats = feature_pair(gen, ref, features)
    return emd(_finite_energies("GEN", gen_stats), _finite_energies("REF", ref_stats))


@dataclass(frozen=True)
class Evaluation:
    """Result of `evaluate`: the JSON fields and what they were computed from (GEN's structures,
    features and validity; REF's features). `features` holds the embedded GEN structures only,
    `embedded` their positions in `structures` (None: all)."""

    summary: dict
    structures: StructureSet
    features: FeatureStatistics
    validity: ValidityResult
    reference: FeatureStatistics
    embedded: np.ndarray | None = None

    def _per_structure(self, values: np.ndarray) -> np.ndarray:
        """GEN feature-set values spread over all GEN structures, NaN where not embedded."""
        full = np.full(len(self.structures), np.nan)
        full[slice(None) if self.embedded is None else self.embedded] = values
        return full

    @property
    def energies(self) -> np.ndarray:
        """Formation energy (eV/atom) of each GEN structure, shape (n,); NaN if not embedded."""
        return self._per_structure(self.features.energies)

    @property
    def densities(self) -> np.ndarray:
        """Density (g/cm³) of each GEN structure, shape (n,); NaN if not embedded."""
        return self._per_structure(self.features.densities)


def evaluate(gen, ref, features: FeatureSource | None = None, energy_model=None) -> Evaluation:
    """Every metric in one pass, each set embedded once: validity of GEN, density and
    element-count EMD, energy EMD, FAD and KID (the keys of `validity`, `density` and `fad`).

    `energy_model`: None (ALIGNN's formation energies) or a `CdvaeEnergy`, whose predictions
    then make the energy EMD (REF must be structures) and replace the energies of the result;
    the summary also names the model (`energy_model`) and its failures (`energy_errors`)."""
    features = features or FeatureSource()
    gen_set = read_structures(gen, progress=features.progress)
    if not len(gen_set):
        raise TooFewStructuresError(f"no readable structures in {gen}",
                                    {"unreadable": named_errors("gen", gen_set.errors)})
    if energy_model is not None:
        if is_statistics_file(ref):
            raise CrystalMetricsError(f"{ref} is a statistics file (ALIGNN energies); the energy "
                                      "model needs REF's structures")
        ref = read_structures(ref, progress=features.progress)
    result = validity(gen_set.crystals)
    gen_stats = features(gen_set)
    ref_stats = features(ref)
    errors = labelled_errors(gen_set.errors, ref_stats.errors)
    left_out = {e.name for e in gen_stats.left_out}
    embedded = np.array([i for i, name in enumerate(gen_set.names) if name not in left_out], int)
    scores = feature_scores(gen_stats, ref_stats)  # first: it checks that both sets suffice
    summary = {"n_structures": len(gen_set), "n_read_errors": len(errors), "read_errors": errors,
               "n_valid": result.n_valid, "validity": result.fractions(),
               "density_emd": emd(gen_stats.densities, ref_stats.densities),
               "n_elements_emd": emd(gen_stats.n_elements, ref_stats.n_elements), **scores}
    if energy_model is not None:  # the structures that have ALIGNN energies, in their order
        gen_values, ref_values, fields = energy_model.scores(
            split_by_size(gen_set, features.max_atoms)[0], split_by_size(ref, features.max_atoms)[0])
        gen_stats = replace(gen_stats, energies=gen_values)
        ref_stats = replace(ref_stats, energies=ref_values)
        summary |= fields
    return Evaluation(summary, gen_set, gen_stats, result, ref_stats, embedded)
