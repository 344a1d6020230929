"""Python API mirroring the CLI: every function takes anything `read_structures` accepts."""
from __future__ import annotations

import os

from .failures import gen_ref_records
from .io import StructureSet, read_structures
from .io.manifest import read_source_ids
from .metrics import uniqueness as _uniqueness
from .metrics.distribution import density_emd_of, n_elements_emd_of
from .metrics.matching import MatchResult, match_structures
from .metrics.selection import Selection, select
from .metrics.smact_check import DEFAULT_OXIDATION_STATES
from .metrics.uniqueness import UniquenessResult
from .metrics.validity import ValidityResult
from .metrics.validity import validity as _validity


def _crystals(source) -> list:
    return read_structures(source).crystals


def validity(structures, oxidation_states: str = DEFAULT_OXIDATION_STATES) -> ValidityResult:
    """Structural, compositional and overall validity flags of every readable structure;
    `oxidation_states`: SMACT table of the compositional check, 'smact221' (CDVAE's) or
    'smact14' (SMACT 4's).

    Unreadable structures are left out; call `read_structures` first to see them.
    """
    return _validity(_crystals(structures), oxidation_states)


def scored_structures(gen, selection: Selection | None = None,
                      oxidation_states: str = DEFAULT_OXIDATION_STATES
                      ) -> tuple[StructureSet, dict]:
    """The generated structures a distribution metric scores (all readable ones, or as
    `selection` says: valid only, validity over `oxidation_states`; a random subset), read
    errors kept, and the JSON fields naming them (`selection_summary`)."""
    gen = read_structures(gen)
    selection = selection or Selection()
    result = _validity(gen.crystals, oxidation_states) if selection.valid_only else None
    scored, _ = select(gen, selection, None if result is None else result.overall)
    return scored, selection_summary(len(gen), selection, len(scored), result)


def density_emd(gen, ref, selection: Selection | None = None,
                oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the density distributions (g/cm³) of the generated and reference sets; GEN
    filtered by `selection` (default: every readable structure)."""
    return density_emd_of(scored_structures(gen, selection, oxidation_states)[0].crystals,
                          _crystals(ref))


def n_elements_emd(gen, ref, selection: Selection | None = None,
                   oxidation_states: str = DEFAULT_OXIDATION_STATES) -> float:
    """EMD between the number-of-elements distributions of the two sets; GEN filtered by
    `selection` (CDVAE's `wdist_num_elems` with `Selection(True, 1000)`)."""
    return n_elements_emd_of(scored_structures(gen, selection, oxidation_states)[0].crystals,
                             _crystals(ref))


def match(gen, ref, pair_by: str = "auto", workers: int | None = None) -> MatchResult:
    """Match rate and RMSE of generated structures against the references they predict (CSP).

    Pairing: by the source_ids of gemsdiff-sample's manifest.csv when `gen` is a folder holding
    one, else by order; `pair_by="id"` without a manifest pairs by name (see metrics/pairing.py).
    """
    source_ids = read_source_ids(gen) if isinstance(gen, (str, os.PathLike)) else None
    return match_structures(read_structures(gen), read_structures(ref), pair_by=pair_by,
                            source_ids=source_ids, workers=workers)


def uniqueness(structures, workers: int | None = None) -> UniquenessResult:
    """Classes of equal structures (MatterGen's matcher settings); `.summary()` has uniqueness."""
    return _uniqueness.uniqueness(read_structures(structures), workers=workers)


def novelty(gen, train, workers: int | None = None) -> UniquenessResult:
    """Uniqueness of `gen` and its novelty against `train`, as `.summary()` fields."""
    return _uniqueness.novelty(read_structures(gen), read_structures(train), workers=workers)


def validity_summary(structures: StructureSet, result: ValidityResult) -> dict:
    """The JSON fields of `crystal-metrics validity`."""
    return {
        "n_structures": len(structures),
        "n_read_errors": len(structures.errors),
        "read_errors": [e.as_dict() for e in structures.errors],
        "n_valid": result.n_valid,
        "validity": result.fractions(),
        "oxidation_states": result.oxidation_states,
    }


def selection_summary(n_readable: int, selection: Selection, n_scored: int,
                      result: ValidityResult | None = None, n_candidates: int | None = None
                      ) -> dict:
    """JSON fields naming the GEN structures a distribution metric scored: `valid_only`,
    `n_samples`, `seed`, `n_scored` and `scored` (one line, e.g. '1000 drawn at random (seed 0)
    from the 8244 valid of 9046 readable'); with a validity `result`, also `n_valid` and
    `oxidation_states`. `n_candidates`: the structures the valid-only filter kept, when it is not
    `result.n_valid` (evaluate also drops structures without a fingerprint, as CDVAE)."""
    if selection.valid_only and n_candidates is None:
        n_candidates = result.n_valid
    fields = {**selection.as_dict(), "n_scored": n_scored,
              "scored": selection.describe(n_scored, n_readable, n_candidates)}
    if result is not None:
        fields.update(n_valid=result.n_valid, oxidation_states=result.oxidation_states)
    return fields


def distribution_summary(gen: StructureSet, ref: StructureSet, selection: Selection | None = None,
                         oxidation_states: str = DEFAULT_OXIDATION_STATES) -> dict:
    """The JSON fields of `crystal-metrics density`; read errors are named 'gen:...' or 'ref:...'.
    GEN's EMD side is filtered by `selection` (default: every readable structure)."""
    scored, chosen = scored_structures(gen, selection, oxidation_states)
    errors = gen_ref_records(gen.errors, ref.errors)
    return {
        "n_gen": len(gen),
        "n_ref": len(ref),
        "n_read_errors": len(errors),
        "read_errors": errors,
        "density_emd": density_emd_of(scored.crystals, ref.crystals),
        "n_elements_emd": n_elements_emd_of(scored.crystals, ref.crystals),
        **chosen,
    }


def match_summary(gen: StructureSet, ref: StructureSet, result: MatchResult) -> dict:
    """The JSON fields of `crystal-metrics match`; read errors are named 'gen:...' or 'ref:...'."""
    errors = gen_ref_records(gen.errors, ref.errors)
    return {**result.summary(), "n_read_errors": len(errors), "read_errors": errors}


def uniqueness_summary(structures: StructureSet, result: UniquenessResult) -> dict:
    """The JSON fields of `crystal-metrics uniqueness`."""
    return {"n_structures": len(structures), **result.summary(),
            "n_read_errors": len(structures.errors),
            "read_errors": [e.as_dict() for e in structures.errors],
            "match_errors": [e.as_dict() for e in result.errors],
            "tolerances": dict(_uniqueness.TOLERANCES)}


def novelty_summary(gen: StructureSet, train: StructureSet, result: UniquenessResult) -> dict:
    """The JSON fields of `crystal-metrics novelty`; errors are named 'gen:...' or 'ref:...'."""
    errors = gen_ref_records(gen.errors, train.errors)
    return {"n_gen": len(gen), "n_train": len(train), **result.summary(),
            "n_read_errors": len(errors), "read_errors": errors,
            "match_errors": gen_ref_records(result.errors, result.train_errors),
            "tolerances": dict(_uniqueness.TOLERANCES)}
