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
    """FAD, KID, set sizes and the extractor's identity."""
    extractor = summary["extractor"]
    return [("FAD", f"{summary['fad']:.4f}"),
            ("KID", f"{summary['kid']:.5f} ± {summary['kid_std']:.5f}"),
            ("generated / reference", f"{summary['n_gen']} / {summary['n_ref']}"),
            ("extractor", f"{extractor['name']} (sha256 {extractor['sha256']}, {extractor['dim']}-d)")]


def energy_rows(summary: dict) -> list[tuple[str, str]]:
    """The energy EMD, with its unit and model when an energy model (not ALIGNN) made it."""
    model = summary.get("energy_model")
    if model is None:
        return [("energy EMD (eV/atom)", f"{summary['energy_emd']:.4f}")]
    return [(f"energy EMD ({model['unit']})", f"{summary['energy_emd']:.4f}"),
            ("energy model", f"{model['name']} ({model['property']}, sha256 {model['sha256']})")]


def evaluation_rows(summary: dict, result: ValidityResult) -> list[tuple[str, str]]:
    """Every row of `crystal-metrics evaluate`."""
    return validity_rows(summary, result) + [
        ("density EMD (g/cm³)", f"{summary['density_emd']:.4f}"),
        ("n-elements EMD", f"{summary['n_elements_emd']:.4f}")] + energy_rows(summary) + \
        feature_rows(summary)
