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

from .api import scored_structures, selection_summary
from .errors import CrystalMetricsError, TooFewStructuresError
from .failures import gen_ref_records, records
from .features import FeatureSet, StructureCache
from .features.cache import default_cache
from .features.embedding import MAX_ATOMS, featurize, split_by_size
from .features.fingerprints import Fingerprints, fingerprints
from .features.space_groups import space_groups
from .io import StructureSet, read_structures, require_readable
from .metrics.coverage import CUTOFFS, coverage_scores
from .metrics.distribution import emd
from .metrics.diversity import fingerprint_diversity
from .metrics.frechet import frechet_distance
from .metrics.kid import kernel_distance
from .metrics.selection import Selection
from .metrics.smact_check import DEFAULT_OXIDATION_STATES
from .metrics.symmetry import SYMPREC, SpaceGroups, space_group_fields
from .metrics.validity import ValidityResult, validity
from .protocols import Protocol, get_protocol


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
    def cache(self) -> StructureCache | None:
        return default_cache() if self.use_cache else None

    def __call__(self, source) -> FeatureSet:
        if isinstance(source, FeatureSet):
            return source
        if is_statistics_file(source):
            return FeatureSet.load(source)
        # a StructureSet passes through
        structures = require_readable(read_structures(source, progress=self.progress))
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
                   kid_subset_size: int = 1000) -> dict:
    """FAD and KID of two feature sets of the same extractor (JSON fields)."""
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
    kid, kid_std, kid_m = kernel_distance(gen.features, ref.features, kid_subsets, kid_subset_size)
    left_out = gen_ref_records(gen.left_out, ref.left_out)
    return {"fad": frechet_distance(*gen.gaussian, *ref.gaussian), "n_gen": gen.n, "n_ref": ref.n,
            "extractor": gen.extractor.as_dict(), "kid": kid, "kid_std": kid_std,
            "kid_subset_size": kid_m, "n_not_embedded": len(left_out), "not_embedded": left_out}


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


def fad(gen, ref, features: FeatureSource | None = None) -> dict:
    """Fréchet ALIGNN Distance between GEN and REF, with KID and the extractor's identity.

    Returns {"fad", "n_gen", "n_ref", "extractor": {name, sha256, dim}, "kid", "kid_std" (None
    below 4 structures), "kid_subset_size", "n_not_embedded", "not_embedded"}.
    """
    return feature_scores(*feature_pair(gen, ref, features))


def scored_features(gen, features: FeatureSource, selection: Selection,
                    oxidation_states: str = DEFAULT_OXIDATION_STATES
                    ) -> tuple[FeatureSet, dict]:
    """Features of the GEN structures `selection` keeps, and the JSON fields naming them.

    A structure set is filtered before it is embedded (a drawn structure with more atoms than
    `features.max_atoms` is then left out, in `left_out`); a statistics file (no structures, so
    no validity) can only be subset at random."""
    if isinstance(gen, FeatureSet) or is_statistics_file(gen):
        stats = features(gen)
        keep = selection.indices(stats.n)
        return stats.take(keep), selection_summary(stats.n, selection, len(keep))
    structures = require_readable(read_structures(gen, progress=features.progress), "GEN")
    scored, chosen = scored_structures(structures, selection, oxidation_states)
    return features(scored), chosen


def energy_emd(gen, ref, features: FeatureSource | None = None,
               selection: Selection | None = None,
               oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the formation-energy-per-atom distributions of GEN and REF, eV/atom; GEN
    filtered by `selection` (default: every readable structure)."""
    features = features or FeatureSource()
    gen_stats, _ = scored_features(gen, features, selection or Selection(), oxidation_states)
    return energy_emd_of(gen_stats, features(ref))


@dataclass(frozen=True)
class Evaluation:
    """Result of `evaluate`: the JSON fields and what they were computed from (GEN's structures,
    features and validity; REF's features). `features` holds the embedded GEN structures only,
    `embedded` their positions in `structures` (None: all); `scored` the positions of the GEN
    structures the distribution metrics scored (None: all), always embedded ones; `space_groups`
    those of the scored GEN structures and of REF (REF's None when REF is a statistics file)."""

    summary: dict
    structures: StructureSet
    features: FeatureSet
    validity: ValidityResult
    reference: FeatureSet
    embedded: np.ndarray | None = None
    scored: np.ndarray | None = None
    space_groups: tuple[SpaceGroups, SpaceGroups | None] | None = None

    def _rows(self, positions: np.ndarray) -> np.ndarray:
        """Rows of `features` of the GEN structures at `positions` (embedded ones)."""
        return positions if self.embedded is None else np.searchsorted(self.embedded, positions)

    def _per_structure(self, values: np.ndarray) -> np.ndarray:
        """GEN feature-set values spread over all GEN structures, NaN where not embedded."""
        full = np.full(len(self.structures), np.nan)
        full[slice(None) if self.embedded is None else self.embedded] = values
        return full

    @property
    def energies(self) -> np.ndarray:
        """Energy of each GEN structure, shape (n,): the extractor's formation energy (eV/atom),
        or the energy model's property (only of the scored structures); NaN if not embedded or
        the model failed."""
        return self._per_structure(self.features.energies)

    @property
    def densities(self) -> np.ndarray:
        """Density (g/cm³) of each GEN structure, shape (n,); NaN if not embedded."""
        return self._per_structure(self.features.densities)

    @property
    def scored_features(self) -> FeatureSet:
        """GEN's features restricted to the scored structures."""
        return self.features if self.scored is None else self.features.take(self._rows(self.scored))


def evaluate(gen, ref, features: FeatureSource | None = None,
             protocol: Protocol | str | None = None, *, seed: int = 0, dataset: str = "mp20",
             symprec: float = SYMPREC, workers: int | None = None,
             energy_model=None) -> Evaluation:
    """Every metric in one pass, each set embedded once: validity of GEN; density,
    element-count and energy EMD, space-group distributions (and, when the protocol asks,
    CDVAE's diversity) of the GEN structures the protocol scores; FAD and KID (and coverage, when
    the protocol asks) of every readable GEN structure. Structures with more atoms than
    `features.max_atoms` are not embedded (`not_embedded`) and never scored.

    Args:
        protocol: a `Protocol`, a name of PROTOCOLS ('cdvae', 'diffcsp', 'gemsdiff') or None
            (every readable structure, SMACT 2.2.1 validity, ALIGNN's energies, no coverage or
            diversity).
        seed: seed of the protocol's random subset.
        dataset: CDVAE's coverage cutoffs and property model (mp20, perov5, carbon24).
        symprec: spglib's distance tolerance (Å) for the space groups.
        workers: processes for reading, fingerprints, space groups and CDVAE's graphs (default:
            all usable CPUs).
        energy_model: the `CdvaeEnergy` of a protocol whose energy model is 'cdvae' (default:
            CDVAE's model of `dataset` on the extractor's device, cache and batch size); given
            without a protocol, it makes the energy model 'cdvae'. Its predictions then make the
            energy EMD (REF must be structures) and the energies of the result, and the summary
            names the model (`energy_model`) and its failures (`energy_errors`).
    """
    protocol = _energy_protocol(get_protocol(protocol), energy_model, dataset)
    features = features or FeatureSource()
    progress, store = features.progress, features.cache
    if dataset not in CUTOFFS:
        raise CrystalMetricsError(f"unknown dataset {dataset!r}; expected one of {sorted(CUTOFFS)}")
    gen_set = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref_set = (None if isinstance(ref, FeatureSet) or is_statistics_file(ref)
               else read_structures(ref, workers=workers, progress=progress))
    if ref_set is None and protocol.energy_model == "cdvae":
        raise CrystalMetricsError(f"{ref} is a statistics file (ALIGNN energies); CDVAE's "
                                  "property model needs REF's structures")
    result = validity(gen_set.crystals, protocol.oxidation_states,
                      protocol.max_oxidation_combinations)
    # candidates of the draw: embeddable structures (valid ones with valid_only), as rows of
    # GEN's features
    embedded = np.flatnonzero(_within(gen_set, features.max_atoms))
    candidates, extra = result.overall[embedded], {}
    selection = protocol.selection(seed)
    selection.indices(len(embedded), candidates)  # too few valid structures: stop before any work
    if protocol.coverage or protocol.diversity:
        gen_fp = fingerprints(gen_set.crystals, workers, progress, store)
        fingerprinted = np.isin(embedded, gen_fp.indices)
        candidates = candidates & fingerprinted  # CDVAE: no fingerprint counts as invalid
    rows = selection.indices(len(embedded), candidates)
    keep = embedded[rows]
    gen_stats = features(gen_set)
    ref_stats = features(ref if ref_set is None else ref_set)
    errors = gen_ref_records(gen_set.errors, ref_stats.errors)
    scores = feature_scores(gen_stats, ref_stats)  # first: it checks that both sets suffice
    if protocol.coverage:
        extra.update(_coverage_fields(gen_set, gen_fp, ref_set, dataset, workers, progress, store))
    if protocol.diversity:
        extra.update(fingerprint_diversity(gen_fp.subset(keep)))
    scored_names = [gen_set.names[i] for i in keep]
    gen_groups = space_groups([gen_set.crystals[i] for i in keep], symprec, workers=workers,
                              progress=progress, cache=store)
    ref_groups = (None if ref_set is None else
                  space_groups(ref_set.crystals, symprec, workers=workers, progress=progress,
                               cache=store))
    if protocol.energy_model == "cdvae":  # its predictions replace ALIGNN's energies
        energy_model = energy_model or _default_cdvae(dataset, features, workers)
        gen_values, ref_values, energy = energy_model.scores(
            gen_set.subset(keep), split_by_size(ref_set, features.max_atoms)[0])
        energies = np.full(gen_stats.n, np.nan)
        energies[rows] = gen_values
        gen_stats = replace(gen_stats, energies=energies)
        ref_stats = replace(ref_stats, energies=ref_values)
    else:  # the extractor's formation energy
        energy = {"energy_emd": energy_emd_of(gen_stats.take(rows), ref_stats)}
    scored = gen_stats.take(rows)
    summary = {"n_structures": len(gen_set), "n_read_errors": len(errors), "read_errors": errors,
               "n_valid": result.n_valid, "validity": result.fractions(),
               "oxidation_states": result.oxidation_states, "protocol": protocol.as_dict(),
               **selection_summary(len(embedded), selection, len(keep), result,
                                   int(candidates.sum())),
               "density_emd": emd(scored.densities, ref_stats.densities),
               "n_elements_emd": emd(scored.n_elements, ref_stats.n_elements),
               **energy, **scores, **extra,
               "space_groups": space_group_fields(gen_groups, ref_groups, scored_names,
                                                  None if ref_set is None else ref_set.names)}
    return Evaluation(summary, gen_set, gen_stats, result, ref_stats, embedded, keep,
                      (gen_groups, ref_groups))


def _coverage_fields(gen_set: StructureSet, gen_fp: Fingerprints, ref_set: StructureSet | None,
                     dataset: str, workers, progress, store) -> dict:
    """COV-R and COV-P of every readable GEN structure (CDVAE), with the fingerprint failures."""
    if ref_set is None:
        raise CrystalMetricsError("coverage needs REF's structures; a statistics file has none")
    ref_fp = fingerprints(ref_set.crystals, workers, progress, store)
    if not len(ref_fp.indices):
        raise CrystalMetricsError("no structure of REF could be fingerprinted")
    struct_cutoff, comp_cutoff = CUTOFFS[dataset]
    failures = ([{"name": f"gen:{gen_set.names[i]}", "reason": r} for i, r in gen_fp.failures.items()]
                + [{"name": f"ref:{ref_set.names[i]}", "reason": r}
                   for i, r in ref_fp.failures.items()])
    return {**coverage_scores(gen_fp.structure, gen_fp.composition, ref_fp.structure,
                              ref_fp.composition, struct_cutoff, comp_cutoff, len(gen_set)),
            "dataset": dataset, "struct_cutoff": struct_cutoff, "comp_cutoff": comp_cutoff,
            "n_fingerprint_errors": len(failures), "fingerprint_errors": failures}


def _within(structures: StructureSet, max_atoms: int | None) -> np.ndarray:
    """(n,) bool: which structures have at most `max_atoms` atoms (the embedded ones)."""
    n_atoms = np.array([c.n_atoms for c in structures.crystals], int)
    return n_atoms <= (np.inf if max_atoms is None else max_atoms)




def _energy_protocol(protocol: Protocol, energy_model, dataset: str) -> Protocol:
    """`protocol`, its energy model made 'cdvae' when a `CdvaeEnergy` is given without a paper's
    protocol; a given model must be of `dataset` and not contradict a paper's protocol."""
    if energy_model is None:
        return protocol
    if protocol.energy_model != "cdvae":
        if protocol.name != "custom":
            raise CrystalMetricsError(f"protocol {protocol.name} scores ALIGNN's energies, not "
                                      "CDVAE's property model")
        protocol = replace(protocol, energy_model="cdvae")
    if energy_model.model.dataset != dataset:
        raise CrystalMetricsError(f"the energy model is CDVAE's {energy_model.model.dataset} "
                                  f"model, but the dataset is {dataset}: one dataset sets the "
                                  "coverage cutoffs and the property model")
    return protocol


def _default_cdvae(dataset: str, features: FeatureSource, workers: int | None):
    """CDVAE's property model of `dataset` with the extractor's device, cache, batch size,
    progress and size limit."""
    from .cdvae_energy import CdvaeEnergy

    return CdvaeEnergy(dataset, device=features.device, batch_size=features.batch_size,
                       cache=features.use_cache, workers=workers, progress=features.progress,
                       max_atoms=features.max_atoms)
