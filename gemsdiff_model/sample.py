"""gemsdiff-sample: compositions in, CIF files out (one per sample), with a manifest.

The output folder holds the CIFs, ``manifest.csv`` (``name, composition, source_id, seed``: one
row per CIF, rewritten atomically after every batch, so it always lists exactly what is on
disk) and ``sampling.json`` (the settings, the planned number of samples, and ``complete``).
An interrupted run is continued with ``--resume`` (same settings; every batch has its own seed,
so the result is the one an uninterrupted run gives); ``--overwrite`` first removes the files
that the folder's manifest lists (the sampler's own earlier outputs) and nothing else.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import click
import torch

from crystal_metrics.io import atomic_write_text, write_csv, write_json
from crystal_metrics.progress import progress as progress_display

from .data import formula, pack_by_atoms, parse_composition, read_crystals, system_compositions
from .errors import GemsDiffError
from .runtime import default_threads, pick_device
from .sampler import check_sampler, generate

#: shipped model, trained on MP-20 train_partial + val (see docs/results.md)
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "mp20.pt"
MANIFEST, SETTINGS = "manifest.csv", "sampling.json"
#: atoms per sampling batch (each batch has its own seed, so the samples depend on it)
BATCH_ATOMS = 2000
FIELDS = ["name", "composition", "source_id", "seed"]


def _jobs(composition, n, system, max_atoms, from_csv):
    """List of (name stem, atomic numbers, source id)."""
    if sum(x is not None and x != () for x in (composition, system, from_csv)) != 1:
        raise GemsDiffError("give exactly one of --composition, --system, --from-csv")
    if n < 1:
        raise GemsDiffError(f"-n must be at least 1, got {n}")
    jobs = []
    if composition:
        for text in composition:
            zs = parse_composition(text, max_atoms)
            jobs += [(f"{formula(zs)}_{k}", zs, "") for k in range(n)]
    elif system:
        for zs in system_compositions(system, max_atoms):
            jobs += [(f"{formula(zs)}_{k}", zs, "") for k in range(n)]
    else:
        names, crystals, _ = read_crystals(from_csv)
        for name, (_, _, numbers) in zip(names, crystals):
            if len(numbers) <= max_atoms:
                zs = sorted(int(a) for a in numbers)
                jobs += [(f"{name}_{k}", zs, name) for k in range(n)]
        if not jobs:
            raise GemsDiffError(f"no usable compositions in {from_csv}")
    return jobs


def _cif_text(lattice, frac, numbers) -> str:
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    structure = Structure(lattice.numpy(), [int(a) for a in numbers], frac.numpy())
    return str(CifWriter(structure))


def _read_manifest(out: Path) -> list[dict]:
    path = out / MANIFEST
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _prepare_folder(out: Path, settings: dict, overwrite: bool, resume: bool) -> list[dict]:
    """Check or clear ``out`` before any work; returns the manifest rows already done."""
    if out.exists() and not out.is_dir():
        raise GemsDiffError(f"--out {out} exists and is not a folder")
    if overwrite and resume:
        raise GemsDiffError("--overwrite and --resume exclude each other")
    if not out.is_dir() or not any(out.iterdir()):
        if resume:
            raise GemsDiffError(f"--resume: {out} holds no earlier sampling run")
        out.mkdir(parents=True, exist_ok=True)
        return []
    rows = _read_manifest(out)
    if resume:
        try:
            saved = json.loads((out / SETTINGS).read_text())
        except (OSError, ValueError):
            raise GemsDiffError(f"--resume: {out / SETTINGS} is missing or damaged") from None
        changed = sorted(k for k in settings if saved.get(k) != settings[k])
        if changed:
            raise GemsDiffError(f"--resume: settings differ from the run in {out}: "
                                f"{', '.join(changed)}")
        return rows
    if not overwrite:
        raise GemsDiffError(f"--out {out} is not empty; pass --overwrite (removes the samples "
                            f"its manifest lists), --resume, or choose another folder")
    for row in rows:      # the sampler's own earlier outputs, nothing else
        (out / f"{row['name']}.cif").unlink(missing_ok=True)
    for name in (MANIFEST, SETTINGS):
        (out / name).unlink(missing_ok=True)
    return []


def run_sampling(checkpoint, out, composition=(), n=1, system=None, max_atoms=20,
                 from_csv=None, steps=100, step_lr=1e-5, seed=0, batch_atoms=BATCH_ATOMS,
                 device="cpu", overwrite=False, resume=False, progress=True, threads=None,
                 restarts=0, restart_tau=0.1) -> list[dict]:
    """Sample and write CIFs, manifest.csv and sampling.json into ``out``; returns the
    manifest rows."""
    from .checkpoint import load_model

    torch.set_num_threads(threads or default_threads())
    out = Path(out)
    if batch_atoms < 1:
        raise GemsDiffError(f"--batch-atoms must be positive, got {batch_atoms}")
    check_sampler(steps, restarts, restart_tau)
    jobs = _jobs(composition, n, system, max_atoms, from_csv)
    dev = pick_device(device)
    model, schedule, standardizer, config = load_model(checkpoint, dev)
    too_heavy = [j for j in jobs if max(j[1]) > config.model.max_z]
    if too_heavy:
        raise GemsDiffError(f"{too_heavy[0][0]} has an element with Z > {config.model.max_z}, "
                            f"which the model does not know")
    settings = {"checkpoint": str(checkpoint), "steps": steps, "step_lr": step_lr, "seed": seed,
                "batch_atoms": batch_atoms, "restarts": restarts, "restart_tau": restart_tau,
                "jobs": [j[0] for j in jobs]}
    rows = _prepare_folder(out, settings, overwrite, resume)
    done = {row["name"] for row in rows}
    write_json(out / SETTINGS, {**settings, "planned": len(jobs), "complete": False},
               overwrite=True)
    groups = pack_by_atoms([len(j[1]) for j in jobs], batch_atoms)
    started = time.time()
    with progress_display(len(jobs), "sampling", "structure", None if progress else False) as bar:
        bar.update(len(done))
        for index, group in enumerate(groups):
            if all(jobs[i][0] in done for i in group):
                continue
            gen = torch.Generator(device=dev)
            gen.manual_seed(seed * 1_000_003 + index)        # one seed per batch: resumable
            lattices, fracs = generate(model, schedule, standardizer,
                                       [jobs[i][1] for i in group], steps, step_lr, gen, dev,
                                       restarts=restarts, restart_tau=restart_tau)
            for i, lattice, frac in zip(group, lattices, fracs):
                stem, zs, source = jobs[i]
                atomic_write_text(out / f"{stem}.cif", _cif_text(lattice, frac, zs), True)
                rows.append({"name": stem, "composition": formula(zs), "source_id": source,
                             "seed": str(seed)})
            write_csv(out / MANIFEST, rows, overwrite=True)
            bar.update(len(group))
    write_json(out / SETTINGS, {**settings, "planned": len(jobs), "complete": True,
                                "seconds": round(time.time() - started, 1)}, overwrite=True)
    return rows


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", type=click.Path(), default=str(DEFAULT_CHECKPOINT),
              show_default="the shipped MP-20 model",
              help="best.pt/last.pt or a run folder (its best.pt).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--composition", multiple=True, help="Formula with exact atom counts, e.g. LiFeO2 "
              "(repeatable).")
@click.option("-n", "n", default=1, show_default=True, help="Structures per composition / row.")
@click.option("--system", help="Chemical system, e.g. Li-Fe-O: every composition with all its "
              "elements and at most --max-atoms atoms (Li-Fe-O, 20 atoms: 1,140).")
@click.option("--max-atoms", default=20, show_default=True)
@click.option("--from-csv", type=click.Path(), help="CDVAE csv(.gz) or CIFs: one structure per "
              "row's composition, named after its material_id.")
@click.option("--steps", default=100, show_default=True,
              help="Predictor steps of the chain (each with one corrector step).")
@click.option("--step-lr", default=1e-5, show_default=True,
              help="Langevin corrector step size (0: no corrector).")
@click.option("--seed", default=0, show_default=True)
@click.option("--restarts", default=0, show_default=True,
              help="Rounds of restart sampling after the chain.")
@click.option("--restart-tau", default=0.1, show_default=True,
              help="Noise level each restart round diffuses the sample back to.")
@click.option("--batch-atoms", default=BATCH_ATOMS, show_default=True,
              help="Atoms per batch (each batch has its own seed).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace the samples of an earlier run in --out.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--threads", type=int, help="CPU threads for torch [half the usable CPUs].")
@click.option("--no-progress", is_flag=True)
def main(checkpoint, out, composition, n, system, max_atoms, from_csv, steps, step_lr, seed,
         restarts, restart_tau, batch_atoms, device, overwrite, resume, threads, no_progress):
    """Generate crystals for given compositions with a trained GemsDiff model."""
    from crystal_metrics.errors import CrystalMetricsError

    try:
        rows = run_sampling(checkpoint, out, composition, n, system, max_atoms, from_csv, steps,
                            step_lr, seed, batch_atoms, device, overwrite, resume,
                            progress=not no_progress, threads=threads, restarts=restarts,
                            restart_tau=restart_tau)
    except (GemsDiffError, CrystalMetricsError) as exc:
        click.echo(f"gemsdiff-sample: error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {len(rows)} structures, manifest.csv and sampling.json to {out}", err=True)


if __name__ == "__main__":
    main()
