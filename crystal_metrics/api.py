"""Python API mirroring the CLI: every function takes anything `read_structures` accepts."""
from __future__ import annotations

import os

from .io import StructureSet, read_structures
from .io.manifest import read_source_ids
from .metrics import uniqueness as _uniqueness
from .metrics.distribution import density_emd_of, n_elements_emd_of
from .metrics.matching import MatchResult, match_structures
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


def density_emd(gen, ref) -> float:
    """EMD between the density distributions (g/cm³) of the generated and reference sets."""
    return density_emd_of(_crystals(gen), _crystals(ref))


def n_elements_emd(gen, ref) -> float:
    """EMD between the number-of-elements distributions of the two sets (CDVAE's d_elem)."""
    return n_elements_emd_of(_crystals(gen), _crystals(ref))


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


def labelled_errors(gen_errors, ref_errors) -> list[dict]:
    """Read errors of both sets, named 'gen:NAME' or 'ref:NAME'."""
    return [{"name": f"{label}:{e.name}", "reason": e.reason}
            for label, errors in (("gen", gen_errors), ("ref", ref_errors)) for e in errors]


def distribution_summary(gen: StructureSet, ref: StructureSet) -> dict:
    """The JSON fields of `crystal-metrics density`; read errors are named 'gen:...' or 'ref:...'."""
    errors = labelled_errors(gen.errors, ref.errors)
    return {
        "n_gen": len(gen),
        "n_ref": len(ref),
        "n_read_errors": len(errors),
        "read_errors": errors,
        "density_emd": density_emd_of(gen.crystals, ref.crystals),
        "n_elements_emd": n_elements_emd_of(gen.crystals, ref.crystals),
    }


def match_summary(gen: StructureSet, ref: StructureSet, result: MatchResult) -> dict:
    """The JSON fields of `crystal-metrics match`; read errors are named 'gen:...' or 'ref:...'."""
    errors = labelled_errors(gen.errors, ref.errors)
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
    errors = labelled_errors(gen.errors, train.errors)
    return {"n_gen": len(gen), "n_train": len(train), **result.summary(),
            "n_read_errors": len(errors), "read_errors": errors,
            "match_errors": labelled_errors(result.errors, result.train_errors),
            "tolerances": dict(_uniqueness.TOLERANCES)}
