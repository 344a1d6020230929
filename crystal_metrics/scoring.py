"""Set-level scores from feature sets: `FeatureSource` turns a set or a statistics file into a
`FeatureSet`, then FAD and KID (`feature_scores`) and the energy EMD (`energy_emd_of`).

GEN and REF are anything `read_structures` accepts or a statistics file (`.npz`, made by
`crystal-metrics stats`); a shipped reference's name (`mp20-test`) gives its statistics file
when the extractor is the default one, else its structures. The extractor is loaded only if a
side has to be embedded. The public
functions and their result objects are in `api.py` and `results.py`.
"""
from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import CrystalMetricsError, TooFewStructuresError
from .failures import records
from .features import FeatureSet, StructureCache
from .features.cache import default_cache
from .features.embedding import MAX_ATOMS, featurize
from .io import StructureSet, read_structures, require_readable
from .metrics.distribution import emd
from .metrics.frechet import frechet_distance
from .metrics.kid import kernel_distance
from .references import named


class SmallSampleWarning(UserWarning):
    """A set is small compared with the feature dimension d: FAD is biased upward (and at d
    structures or fewer the covariance is rank-deficient)."""


def is_statistics_file(source) -> bool:
    return isinstance(source, (str, Path)) and str(source).lower().endswith(".npz")


class FeatureSource:
    """Turns sets or statistics files into `FeatureSet` with one extractor.

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
        bf16: run the network under bfloat16 autocast (faster on CPUs with AVX512-BF16 or AMX
            and on GPUs; a separate extractor variant `bf16`, never mixed with float32's).
    """

    def __init__(self, weights=None, device=None, cache: bool = True, batch_size: int = 32,
                 progress: bool | None = None, exact_graph: bool = False,
                 max_atoms: int | None = MAX_ATOMS, bf16: bool = False):
        self.weights, self.device, self.use_cache = weights, device, cache
        self.batch_size, self.progress, self.exact_graph = batch_size, progress, exact_graph
        self.max_atoms, self.bf16 = max_atoms, bf16

    @cached_property
    def extractor(self):
        from .alignn import load_extractor

        graph = {"shell_tol": 0.0} if self.exact_graph else {}
        return load_extractor(self.weights, device=self.device, bf16=self.bf16, **graph)

    @cached_property
    def cache(self) -> StructureCache | None:
        return default_cache() if self.use_cache else None

    @property
    def is_default(self) -> bool:
        """Whether this is the extractor of the shipped references' statistics (ALIGNN-FF's
        default weights and graph, float32)."""
        return self.weights is None and not self.exact_graph and not self.bf16

    def __call__(self, source) -> FeatureSet:
        if isinstance(source, FeatureSet):
            return source
        if is_statistics_file(source):
            return FeatureSet.load(source)
        reference = named(source)
        if reference is not None and self.is_default:
            return FeatureSet.load(reference.statistics)
        # a StructureSet passes through; a reference's structures for another extractor
        return self.embed(require_readable(read_structures(source, progress=self.progress)))

    def embed(self, structures: StructureSet) -> FeatureSet:
        """The `FeatureSet` of `structures` (which may be empty)."""
        return featurize(structures, self.extractor, self.cache, self.batch_size, self.progress,
                         self.max_atoms)


def feature_pair(gen, ref, features: FeatureSource | None = None
                 ) -> tuple[FeatureSet, FeatureSet]:
    """Features of GEN and REF, refusing to mix extractors."""
    features = features or FeatureSource()
    gen_stats, ref_stats = features(gen), features(ref)
    gen_stats.check_same_extractor(ref_stats)
    return gen_stats, ref_stats


def feature_scores(gen: FeatureSet, ref: FeatureSet, kid_subsets: int = 100,
                   kid_subset_size: int = 1000) -> tuple[float, float, float | None, int]:
    """(FAD, KID, KID's spread over subsets (None below 4 structures), the subset size) of two
    feature sets of the same extractor; too few structures in a set is an error naming the
    others, and a set small for the feature dimension a `SmallSampleWarning`."""
    gen.check_same_extractor(ref)
    for label, stats in (("GEN", gen), ("REF", ref)):
        if stats.n < 2:
            others = [f"{k} {what}" for k, what in ((len(stats.errors), "unreadable"),
                                                    (len(stats.left_out), "too large")) if k]
            raise TooFewStructuresError(
                f"{label} has {stats.n} usable structure{'' if stats.n == 1 else 's'}"
                + (f" ({', '.join(others)}: listed above)" if others else "")
                + "; FAD and KID need at least 2 (thousands for a meaningful value)",
                {"unreadable": records(stats.errors, label.lower()),
                 "not embedded": records(stats.left_out, label.lower())})
        d = stats.extractor.dim
        if stats.n <= d:
            warnings.warn(f"{label} has {stats.n} structures, fewer than d + 1 = {d + 1}: its "
                          "covariance is rank-deficient and FAD is biased upward; use thousands "
                          "of structures", SmallSampleWarning, stacklevel=3)
        elif stats.n < 2 * d:
            warnings.warn(f"{label} has {stats.n} structures, fewer than 2 × {d}: FAD is biased "
                          "upward at this size; use thousands of structures", SmallSampleWarning,
                          stacklevel=3)
    return (frechet_distance(*gen.gaussian, *ref.gaussian),
            *kernel_distance(gen.features, ref.features, kid_subsets, kid_subset_size))


class MissingEnergyWarning(UserWarning):
    """Some structures have no formation energy (an element without elemental reference)."""


def _finite_energies(label: str, stats: FeatureSet):
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


def energy_emd_of(gen: FeatureSet, ref: FeatureSet) -> float:
    """EMD of the finite formation energies (eV/atom) of two feature sets."""
    gen.check_same_extractor(ref)
    return emd(_finite_energies("GEN", gen), _finite_energies("REF", ref))
