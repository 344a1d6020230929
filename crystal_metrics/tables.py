"""Rows (label, text) of the result tables that the CLI prints and the HTML report shows."""
from __future__ import annotations

from .metrics.validity import ValidityResult


def validity_rows(summary: dict, result: ValidityResult) -> list[tuple[str, str]]:
    """Structure count, read errors and the three validity fractions with their counts."""
    n = summary["n_structures"]
    fractions = summary["validity"]

    def line(key, flags):
        return f"{fractions[key]:.4f}  ({int(flags.sum())}/{n})" if n else "n/a"

    return [("structures", str(n)), ("read errors", str(summary["n_read_errors"])),
            ("structural", line("structural", result.structural)),
            ("compositional", line("compositional", result.compositional)),
            ("overall", line("overall", result.overall))]


def feature_rows(summary: dict) -> list[tuple[str, str]]:
    """FAD, KID, set sizes (and structures too large to embed, if any) and the extractor."""
    extractor = summary["extractor"]
    left_out = summary.get("n_not_embedded", 0)
    return [("FAD", f"{summary['fad']:.4f}"),
            ("KID", kid_text(summary)),
            ("generated / reference", f"{summary['n_gen']} / {summary['n_ref']}"),
            *([("not embedded (--max-atoms)", str(left_out))] if left_out else []),
            ("extractor", f"{extractor['name']} (sha256 {extractor['sha256']}, {extractor['dim']}-d)")]


def kid_text(summary: dict) -> str:
    """KID ± its spread over subsets, the subset size, and a word on values below zero."""
    kid, std = summary["kid"], summary["kid_std"]
    spread = "± n/a (fewer than 4 structures in a set)" if std is None else f"± {std:.5f}"
    text = f"{kid:.5f} {spread} (subsets of {summary['kid_subset_size']})"
    if kid < 0:
        text += "; below 0: no difference detected (the estimate is unbiased, so it scatters " \
                "around 0 for equal distributions)"
    return text


def energy_rows(summary: dict) -> list[tuple[str, str]]:
    """The energy EMD, with its unit and model when an energy model (not ALIGNN) made it."""
    model = summary.get("energy_model")
    if model is None:
        return [("energy EMD (eV/atom)", f"{summary['energy_emd']:.4f}")]
    return [(f"energy EMD ({model['unit']})", f"{summary['energy_emd']:.4f}"),
            ("energy model", f"{model['name']} ({model['property']}, sha256 {model['sha256']})")]


def _number(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def space_group_rows(fields: dict) -> list[tuple[str, str]]:
    """Distances between the crystal-system and space-group distributions of GEN and REF."""
    tolerances = f"symprec {fields['symprec']:g} Å, angle {fields['angle_tolerance']:g}°"
    return [("crystal-system TV", _number(fields["crystal_system_tv"])),
            ("space-group TV", f"{_number(fields['space_group_tv'])}  ({tolerances})")]


def evaluation_rows(summary: dict, result: ValidityResult) -> list[tuple[str, str]]:
    """Every row of `crystal-metrics evaluate`: validity, the protocol and the scored GEN
    structures, the EMDs, coverage and diversity when computed, space groups, FAD and KID."""
    rows = validity_rows(summary, result) + [
        ("oxidation states", summary["oxidation_states"]),
        ("protocol", summary["protocol"]["name"]),
        ("GEN scored", summary["scored"]),
        ("density EMD (g/cm³)", f"{summary['density_emd']:.4f}"),
        ("n-elements EMD", f"{summary['n_elements_emd']:.4f}")] + energy_rows(summary)
    if "cov_recall" in summary:
        cutoffs = f"{summary['dataset']}: {summary['struct_cutoff']:g} / {summary['comp_cutoff']:g}"
        rows += [("COV-R", f"{summary['cov_recall']:.4f}  (all GEN, cutoffs {cutoffs})"),
                 ("COV-P", f"{summary['cov_precision']:.4f}")]
    if "comp_div" in summary:
        rows += [("composition diversity", f"{summary['comp_div']:.4f}"),
                 ("structure diversity", f"{summary['struct_div']:.4f}")]
    return rows + space_group_rows(summary["space_groups"]) + feature_rows(summary)
