"""Python API mirroring the CLI: every function takes anything `read_structures` accepts."""
from __future__ import annotations

from .io import StructureSet, read_structures
from .metrics.distribution import density_emd_of, n_elements_emd_of
from .metrics.validity import ValidityResult, validity as _validity


def _crystals(source) -> list:
    return read_structures(source).crystals


def validity(structures) -> ValidityResult:
    """Structural, compositional and overall validity flags of every readable structure.

    Unreadable structures are left out; call `read_structures` first to see them.
    """
    return _validity(_crystals(structures))


def density_emd(gen, ref) -> float:
    """EMD between the density distributions (g/cm³) of the generated and reference sets."""
    return density_emd_of(_crystals(gen), _crystals(ref))


def n_elements_emd(gen, ref) -> float:
    """EMD between the number-of-elements distributions of the two sets (CDVAE's d_elem)."""
    return n_elements_emd_of(_crystals(gen), _crystals(ref))


def validity_summary(structures: StructureSet, result: ValidityResult) -> dict:
    """The JSON fields of `crystal-metrics validity`."""
    return {
        "n_structures": len(structures),
        "n_read_errors": len(structures.errors),
        "read_errors": [e.as_dict() for e in structures.errors],
        "n_valid": result.n_valid,
        "validity": result.fractions(),
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
