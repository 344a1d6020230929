"""`crystal-metrics` command line: validity and distribution metrics of crystal sets.

Exit codes: 0 success; 1 bad input under --strict, or nothing readable to score; 2 usage
errors (unknown option, output file exists without --overwrite...).
"""
from __future__ import annotations

from pathlib import Path

import click
from .api import distribution_summary, validity_summary
from .errors import CrystalMetricsError, OutputExistsError
from .io import StructureSet, check_writable, read_structures, write_csv, write_json
from .metrics.validity import ValidityResult, validity

MAX_ERRORS_SHOWN = 20

_output = click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Write the results as JSON to this file.")
_overwrite = click.option("--overwrite", is_flag=True, help="Replace existing output files.")
_strict = click.option("--strict", is_flag=True,
                       help="Fail (exit 1) on the first unreadable or unusable structure.")
_workers = click.option("--workers", type=click.IntRange(min=1),
                        help="Processes for CIF parsing [default: all usable CPUs].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crystal-metrics")
def main():
    """Score sets of crystal structures: validity, density and element-count EMD.

    PATH arguments take a folder (of .cif, .csv/.csv.gz with a `cif` column, .extxyz files),
    a multi-block .cif, a CDVAE-style CSV or an .extxyz file.
    """


@main.command("validity")
@click.argument("path", type=click.Path(path_type=Path))
@_output
@click.option("--per-structure", "per_structure", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one CSV row per structure (flags, density, minimum distance, errors).")
@_strict
@_overwrite
@_workers
def validity_command(path, json_path, per_structure, strict, overwrite, workers):
    """Structural, compositional and overall validity of the structures at PATH."""
    _check_outputs(overwrite, json_path, per_structure)
    structures = _read(path, strict, workers)
    result = validity(structures.crystals)
    summary = validity_summary(structures, result)
    _print_validity(path, summary, result)
    _print_errors(summary["read_errors"])
    if json_path:
        write_json(json_path, summary, overwrite)
    if per_structure:
        write_csv(per_structure, _per_structure_rows(structures, result), overwrite)
    if not len(structures):
        raise click.ClickException(f"no readable structures in {path}")


@main.command("density")
@click.argument("gen", type=click.Path(path_type=Path))
@click.argument("ref", type=click.Path(path_type=Path))
@_output
@_strict
@_overwrite
@_workers
def density_command(gen, ref, json_path, strict, overwrite, workers):
    """EMD of density (g/cm³) and of number of elements between GEN and REF."""
    _check_outputs(overwrite, json_path)
    gen_set, ref_set = _read(gen, strict, workers), _read(ref, strict, workers)
    for label, path, structures in (("GEN", gen, gen_set), ("REF", ref, ref_set)):
        if not len(structures):
            _print_errors([e.as_dict() for e in structures.errors])
            raise click.ClickException(f"no readable structures in {label} {path}")
    summary = distribution_summary(gen_set, ref_set)
    _table([("generated structures", summary["n_gen"]), ("reference structures", summary["n_ref"]),
            ("read errors", summary["n_read_errors"]),
            ("density EMD (g/cm³)", f"{summary['density_emd']:.4f}"),
            ("n-elements EMD", f"{summary['n_elements_emd']:.4f}")])
    _print_errors(summary["read_errors"])
    if json_path:
        write_json(json_path, summary, overwrite)


def _check_outputs(overwrite: bool, *paths) -> None:
    try:
        for path in paths:
            if path is not None:
                check_writable(path, overwrite)
    except OutputExistsError as exc:
        raise click.UsageError(str(exc)) from None
    except CrystalMetricsError as exc:
        raise click.BadParameter(str(exc)) from None


def _read(path: Path, strict: bool, workers: int | None) -> StructureSet:
    try:
        return read_structures(path, strict=strict, workers=workers)
    except CrystalMetricsError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _table(rows) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


def _print_validity(path, summary: dict, result: ValidityResult) -> None:
    n = summary["n_structures"]
    fractions = summary["validity"]

    def line(key, flags):
        return f"{fractions[key]:.4f}  ({int(flags.sum())}/{n})" if n else "n/a"

    click.echo(f"validity of {path}")
    _table([("structures", n), ("read errors", summary["n_read_errors"]),
            ("structural", line("structural", result.structural)),
            ("compositional", line("compositional", result.compositional)),
            ("overall", line("overall", result.overall))])


def _print_errors(errors: list[dict]) -> None:
    for error in errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"  unreadable {error['name']}: {error['reason']}", err=True)
    if len(errors) > MAX_ERRORS_SHOWN:
        click.echo(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more (see --json)", err=True)


PER_STRUCTURE_COLUMNS = ("name", "formula", "n_atoms", "volume_A3", "density_g_cm3",
                         "min_distance_A", "structural_valid", "compositional_valid", "valid",
                         "read_error")


def _per_structure_rows(structures: StructureSet, result: ValidityResult) -> list[dict]:
    rows = [dict(zip(PER_STRUCTURE_COLUMNS, (
        name, crystal.formula, crystal.n_atoms, f"{crystal.volume:.6g}", f"{crystal.density:.6g}",
        f"{result.min_distance[i]:.6g}", bool(result.structural[i]),
        bool(result.compositional[i]), bool(result.overall[i]), "")))
        for i, (name, crystal) in enumerate(zip(structures.names, structures.crystals))]
    blank = dict.fromkeys(PER_STRUCTURE_COLUMNS, "")
    return rows + [{**blank, "name": e.name, "read_error": e.reason} for e in structures.errors]
