"""`crystal-metrics` command line: validity, distribution metrics and FAD of crystal sets.

Exit codes: 0 success; 1 bad input under --strict, or nothing readable to score; 2 usage
errors (unknown option, output file exists without --overwrite...).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import click
from .api import distribution_summary, validity_summary
from .errors import CrystalMetricsError, OutputExistsError
from .io import StructureSet, check_writable, read_structures, write_csv, write_json
from .metrics.distribution import emd
from .metrics.validity import ValidityResult, validity
from .scoring import FeatureSource, evaluate, fad, feature_pair

MAX_ERRORS_SHOWN = 20

def _gen_ref(command):
    """The GEN and REF arguments of the commands that compare two sets."""
    command = click.argument("ref", type=click.Path(path_type=Path))(command)
    return click.argument("gen", type=click.Path(path_type=Path))(command)


_output = click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Write the results as JSON to this file.")
_overwrite = click.option("--overwrite", is_flag=True, help="Replace existing output files.")
_strict = click.option("--strict", is_flag=True,
                       help="Fail (exit 1) on the first unreadable or unusable structure.")
_workers = click.option("--workers", type=click.IntRange(min=1),
                        help="Processes for CIF parsing [default: all usable CPUs].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crystal-metrics")
@click.pass_context
def main(ctx):
    """Score sets of crystal structures: validity, density, element-count and energy EMD, and
    the Fréchet ALIGNN Distance (FAD).

    PATH arguments take a folder (of .cif, .csv/.csv.gz with a `cif` column, .extxyz files),
    a multi-block .cif, a CDVAE-style CSV or an .extxyz file.
    """
    ctx.with_resource(warnings.catch_warnings())
    warnings.showwarning = _show_warning  # restored when the command ends


def _show_warning(message, category, *args, **kwargs):
    click.echo(f"warning: {message}", err=True)


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
    click.echo(f"validity of {path}")
    _table(_validity_rows(summary, result))
    _print_errors(summary["read_errors"])
    if json_path:
        write_json(json_path, summary, overwrite)
    if per_structure:
        write_csv(per_structure, _per_structure_rows(structures, result), overwrite)
    if not len(structures):
        raise click.ClickException(f"no readable structures in {path}")


@main.command("density")
@_gen_ref
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


_weights = click.option("--weights", help="ALIGNN checkpoint: folder, zip or URL "
                        "[default: ALIGNN-FF, fetched once].")
_device = click.option("--device", help="torch device [default: cuda if available, else cpu].")
_batch = click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                      help="Structures per forward pass.")
_no_cache = click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
_exact = click.option("--alignn-exact-graph", "exact_graph", is_flag=True,
                      help="alignn's graph bit for bit (ties in neighbour shells broken by rounding "
                           "noise: not rotation/supercell invariant; FADs not comparable).")


def _extractor_options(command):
    for option in (_exact, _no_cache, _batch, _device, _weights):
        command = option(command)
    return command


def _features(weights, device, batch_size, no_cache, exact_graph) -> FeatureSource:
    return FeatureSource(weights, device=device, cache=not no_cache, batch_size=batch_size,
                         exact_graph=exact_graph)


@main.command("fad")
@_gen_ref
@_output
@_overwrite
@_extractor_options
def fad_command(gen, ref, json_path, overwrite, weights, device, batch_size, no_cache, exact_graph):
    """Fréchet ALIGNN Distance (and KID) between GEN and REF.

    GEN and REF are structure sets or statistics files made by `crystal-metrics stats`.
    """
    _check_outputs(overwrite, json_path)
    summary = _run(fad, gen, ref, _features(weights, device, batch_size, no_cache, exact_graph))
    _table(_feature_rows(summary))
    if json_path:
        write_json(json_path, summary, overwrite)


@main.command("energy")
@_gen_ref
@_output
@_overwrite
@_extractor_options
def energy_command(gen, ref, json_path, overwrite, weights, device, batch_size, no_cache,
                   exact_graph):
    """EMD of predicted formation energy per atom (eV/atom) between GEN and REF."""
    _check_outputs(overwrite, json_path)
    features = _features(weights, device, batch_size, no_cache, exact_graph)
    gen_stats, ref_stats = _run(feature_pair, gen, ref, features)
    summary = {"energy_emd": emd(gen_stats.energies, ref_stats.energies), "n_gen": gen_stats.n,
               "n_ref": ref_stats.n, "extractor": gen_stats.extractor.as_dict()}
    _table([("energy EMD (eV/atom)", f"{summary['energy_emd']:.4f}"),
            ("generated / reference", f"{gen_stats.n} / {ref_stats.n}"),
            ("extractor", str(gen_stats.extractor))])
    if json_path:
        write_json(json_path, summary, overwrite)


@main.command("stats")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Statistics file to write (.npz).")
@_overwrite
@_extractor_options
def stats_command(path, output, overwrite, weights, device, batch_size, no_cache, exact_graph):
    """Embed PATH once and save what FAD, KID and the EMDs need, to compare against later."""
    _check_outputs(overwrite, output)
    stats = _run(_features(weights, device, batch_size, no_cache, exact_graph), path)
    _print_errors([e.as_dict() for e in stats.errors])
    stats.save(output, overwrite)
    click.echo(f"{stats.n} structures, {stats.extractor} -> {output}")


@main.command("evaluate")
@_gen_ref
@_output
@click.option("--per-structure", "per_structure", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one CSV row per GEN structure (validity, density, energy, errors).")
@_overwrite
@_extractor_options
def evaluate_command(gen, ref, json_path, per_structure, overwrite, weights, device, batch_size,
                     no_cache, exact_graph):
    """Every metric of GEN against REF in one pass: validity, density, element-count and energy
    EMD, FAD and KID."""
    _check_outputs(overwrite, json_path, per_structure)
    evaluation = _run(evaluate, gen, ref, _features(weights, device, batch_size, no_cache,
                                                    exact_graph))
    summary = evaluation.summary
    click.echo(f"evaluation of {gen} against {ref}")
    _table(_validity_rows(summary, evaluation.validity) + [
        ("density EMD (g/cm³)", f"{summary['density_emd']:.4f}"),
        ("n-elements EMD", f"{summary['n_elements_emd']:.4f}"),
        ("energy EMD (eV/atom)", f"{summary['energy_emd']:.4f}")] + _feature_rows(summary))
    _print_errors(summary["read_errors"])
    if json_path:
        write_json(json_path, summary, overwrite)
    if per_structure:
        write_csv(per_structure, _per_structure_rows(evaluation.structures, evaluation.validity,
                                                     evaluation.features.energies), overwrite)


@main.command("weights")
@click.option("--fetch", is_flag=True, help="Fetch the default ALIGNN-FF weights now (PyPI, once).")
def weights_command(fetch):
    """Show the cached model weights and embeddings; fetch the default weights on demand."""
    from .features import EmbeddingCache
    from .weights import cache_dir, fetch_alignn_ff, sha256_file

    if fetch:
        click.echo(f"ALIGNN-FF ready in {_run(fetch_alignn_ff)}")
    root = _run(cache_dir)
    click.echo(f"cache folder: {root}  (set CRYSTAL_METRICS_CACHE to move it)")
    weights = sorted(root.rglob("*.pt"))
    for path in weights:
        size = path.stat().st_size / 2 ** 20
        click.echo(f"  weights {path.relative_to(root)}  sha256 {sha256_file(path)[:12]}  "
                   f"{size:.1f} MiB")
    if not weights:
        click.echo("  no weights cached: the first FAD fetches ALIGNN-FF (or run with --fetch)")
    if (root / "embeddings.sqlite").exists():
        for key, count in EmbeddingCache(root / "embeddings.sqlite").counts().items():
            click.echo(f"  embeddings {key.split(':', 1)[1]}: {count} structures")


def _run(function, *args):
    """Call `function`, turning a CrystalMetricsError into a one-line error (exit 1)."""
    try:
        return function(*args)
    except CrystalMetricsError as exc:
        raise click.ClickException(str(exc)) from None


def _feature_rows(summary: dict) -> list[tuple]:
    extractor = summary["extractor"]
    return [("FAD", f"{summary['fad']:.4f}"),
            ("KID", f"{summary['kid']:.5f} ± {summary['kid_std']:.5f}"),
            ("generated / reference", f"{summary['n_gen']} / {summary['n_ref']}"),
            ("extractor", f"{extractor['name']} (sha256 {extractor['sha256']}, {extractor['dim']}-d)")]


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


def _validity_rows(summary: dict, result: ValidityResult) -> list[tuple]:
    n = summary["n_structures"]
    fractions = summary["validity"]

    def line(key, flags):
        return f"{fractions[key]:.4f}  ({int(flags.sum())}/{n})" if n else "n/a"

    return [("structures", n), ("read errors", summary["n_read_errors"]),
            ("structural", line("structural", result.structural)),
            ("compositional", line("compositional", result.compositional)),
            ("overall", line("overall", result.overall))]


def _print_errors(errors: list[dict]) -> None:
    for error in errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"  unreadable {error['name']}: {error['reason']}", err=True)
    if len(errors) > MAX_ERRORS_SHOWN:
        click.echo(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more (see --json)", err=True)


PER_STRUCTURE_COLUMNS = ("name", "formula", "n_atoms", "volume_A3", "density_g_cm3",
                         "min_distance_A", "structural_valid", "compositional_valid", "valid",
                         "formation_energy_eV_atom", "read_error")


def _per_structure_rows(structures: StructureSet, result: ValidityResult,
                        energies=None) -> list[dict]:
    """One row per structure; `formation_energy_eV_atom` is blank unless `energies` are given."""
    rows = [dict(zip(PER_STRUCTURE_COLUMNS, (
        name, crystal.formula, crystal.n_atoms, f"{crystal.volume:.6g}", f"{crystal.density:.6g}",
        f"{result.min_distance[i]:.6g}", bool(result.structural[i]),
        bool(result.compositional[i]), bool(result.overall[i]),
        "" if energies is None else f"{energies[i]:.6g}", "")))
        for i, (name, crystal) in enumerate(zip(structures.names, structures.crystals))]
    blank = dict.fromkeys(PER_STRUCTURE_COLUMNS, "")
    return rows + [{**blank, "name": e.name, "read_error": e.reason} for e in structures.errors]
