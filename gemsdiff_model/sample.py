"""gemsdiff-sample: generate crystals of given compositions (Algorithm 2)."""
from __future__ import annotations

import csv
import io
import itertools
import sys
from pathlib import Path

import click
import torch

from .data import (
    default_threads,
    formula,
    pack_by_atoms,
    parse_composition,
    read_crystals,
    system_compositions,
)
from .diffusion import (
    Schedule,
    corrupt,
    posterior_lattice,
    posterior_positions,
    predicted_lattice,
)
from .errors import GemsDiffError
from .geometry import lattice_to_vector, to_canonical_basis, vector_to_lattice

#: shipped model: trained on MP-20 *val* (the train split was not available), see docs/results.md
DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "mp20_val.pt"


def timesteps(total: int, steps: int | None) -> list[int]:
    """Decreasing steps T = t_S > ... > t_1 >= 1 (respaced when steps < T), then 0."""
    steps = total if steps is None else steps
    if not 1 <= steps <= total:
        raise GemsDiffError(f"--steps must be between 1 and {total} (the trained T), got {steps}")
    ts = torch.linspace(total, 1, steps).round().long().tolist()
    return sorted(set(ts), reverse=True) + [0]


def check_restarts(schedule: Schedule, restarts: int, restart_step: int) -> None:
    """Clear errors for restart settings outside 0 <= restarts, 1 <= restart_step <= T."""
    if restarts < 0:
        raise GemsDiffError(f"--restarts must be 0 or more, got {restarts}")
    if not 1 <= restart_step <= schedule.steps:
        raise GemsDiffError(f"--restart-step must be between 1 and {schedule.steps} (the trained "
                            f"T), got {restart_step}")


@torch.no_grad()
def generate(model, schedule: Schedule, numbers: list[list[int]], steps: int | None = None,
             generator: torch.Generator | None = None, device="cpu", on_step=None,
             restarts: int = 0, restart_step: int = 10):
    """Sample one structure per atomic-number list, as one batch.

    ``restarts`` rounds of restart sampling (Xu et al., NeurIPS 2023) follow the chain: the
    sample is diffused forward to ``restart_step`` with the training corruption and denoised
    back to 0, every step (docs/results.md: fewer crowded atoms; 0 is the paper's sampler).
    ``on_step(s, lattice (B,3,3), frac (N,3))``, if given, sees the state after each step to s,
    restart rounds included (with the ``coords`` head, in the chain's unreduced basis).
    Returns (lattices (B,3,3) float64 Å rows, list of (n_i,3) fractional coordinates).
    The cell is re-expressed in its canonical basis after every step, except with the ``coords``
    lattice head (basis dependent), whose chain stays in the basis of the DDPM state as in
    training and is reduced at the end of each chain.
    """
    check_restarts(schedule, restarts, restart_step)
    device = torch.device(device)
    dtype = next(model.parameters()).dtype
    n_atoms = torch.tensor([len(z) for z in numbers], device=device)
    z = torch.tensor([a for zs in numbers for a in zs], device=device)
    batch = torch.repeat_interleave(torch.arange(len(numbers), device=device), n_atoms)
    x = torch.rand((len(z), 3), generator=generator, device=device, dtype=dtype)   # U(0,1)
    v = torch.randn((len(numbers), 9), generator=generator, device=device, dtype=torch.float64)
    chain = (model, schedule, z, batch, n_atoms, generator, on_step)
    lattice, x = _denoise(*chain, v, x, timesteps(schedule.steps, steps))
    for _ in range(restarts):
        t = torch.full((len(numbers),), restart_step, device=device)
        lattice, x = corrupt(schedule, lattice, x, batch, t, generator)  # as in training
        lattice, x = _denoise(*chain, lattice_to_vector(lattice), x.to(dtype),
                              list(range(restart_step, -1, -1)))
    x64 = x.to(torch.float64).cpu()
    return lattice.cpu(), list(torch.split(x64, n_atoms.cpu().tolist()))


def _denoise(model, schedule, z, batch, n_atoms, generator, on_step, v, x, ts):
    """Reverse chain over the decreasing steps ``ts`` (ending at 0) from lattice vectors v (B,9)
    and fractional coordinates x (N,3); returns the canonical (lattice (B,3,3), x)."""
    lattice = vector_to_lattice(v)                                                   # exp(pi v)
    coords_head = model.config.lattice_head == "coords"
    for t, s in itertools.pairwise(ts):
        tt = torch.full((len(n_atoms),), t, device=x.device, dtype=torch.long)
        out = model(lattice.to(x.dtype), x, z, tt, batch, n_atoms,
                    lattice_scale=schedule.lattice_scale(tt), position_scale=schedule.position_scale(tt))
        x = posterior_positions(schedule, x, out["frac"], t, s, generator)
        v0_hat = lattice_to_vector(predicted_lattice(out, lattice).to(torch.float64))
        v = posterior_lattice(schedule, v, v0_hat, t, s, generator)
        if coords_head:
            # the coords head reads the coordinates of v_t itself (trained on unreduced noisy
            # bases), so the state stays in the basis of the DDPM chain; reduced at the end
            lattice = vector_to_lattice(v)
        else:
            # same crystal in its canonical (reduced) basis: the denoiser is SL3(Z)-equivariant,
            # and this keeps the 9-vector in the domain seen in training (canonical data bases)
            lattice, x = to_canonical_basis(vector_to_lattice(v), x, batch)
            v = lattice_to_vector(lattice)
        if on_step is not None:
            on_step(s, lattice, x)
    if coords_head:
        lattice, x = to_canonical_basis(lattice, x, batch)
    return lattice, x


def _cif_text(lattice, frac, numbers) -> str:
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    structure = Structure(lattice.numpy(), [int(a) for a in numbers], frac.numpy())
    return str(CifWriter(structure))


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
            if len(numbers) > max_atoms:
                continue
            zs = sorted(int(a) for a in numbers)
            jobs += [(f"{name}_{k}", zs, name) for k in range(n)]
        if not jobs:
            raise GemsDiffError(f"no usable compositions in {from_csv}")
    return jobs


def run_sampling(checkpoint, out, composition=(), n=1, system=None, max_atoms=20,
                 from_csv=None, steps=None, seed=0, batch_atoms=2000, device="cpu",
                 overwrite=False, progress=True, threads=None, restarts=0,
                 restart_step=10) -> list[dict]:
    """Sample and write CIFs + manifest.csv into ``out``; returns the manifest rows."""
    from tqdm.auto import tqdm

    from crystal_metrics.io import atomic_write_text

    from .checkpoint import load_model
    from .train import pick_device

    torch.set_num_threads(threads or default_threads())
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GemsDiffError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise GemsDiffError(f"--out {out} is not empty; pass --overwrite or choose another folder")
    if batch_atoms < 1:
        raise GemsDiffError(f"--batch-atoms must be positive, got {batch_atoms}")
    jobs = _jobs(composition, n, system, max_atoms, from_csv)
    dev = pick_device(device, None)
    model, schedule, _, config = load_model(checkpoint, dev)
    too_heavy = [j for j in jobs if max(j[1]) > config.model.max_z]
    if too_heavy:
        raise GemsDiffError(f"{too_heavy[0][0]} has an element with Z > {config.model.max_z}, "
                            f"which the model does not know")
    timesteps(schedule.steps, steps)   # validate before any work
    check_restarts(schedule, restarts, restart_step)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    rows = []
    groups = pack_by_atoms([len(j[1]) for j in jobs], batch_atoms)
    with tqdm(total=len(jobs), desc="sampling", unit="structure", disable=not progress) as bar:
        for group in groups:
            lattices, fracs = generate(model, schedule, [jobs[i][1] for i in group], steps, gen, dev,
                                       restarts=restarts, restart_step=restart_step)
            for i, lattice, frac in zip(group, lattices, fracs):
                stem, zs, source = jobs[i]
                atomic_write_text(out / f"{stem}.cif", _cif_text(lattice, frac, zs), overwrite)
                rows.append({"name": stem, "composition": formula(zs), "source_id": source,
                             "seed": seed})
            bar.update(len(group))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["name", "composition", "source_id", "seed"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "manifest.csv", buffer.getvalue(), overwrite)
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
              "elements and at most --max-atoms atoms.")
@click.option("--max-atoms", default=20, show_default=True)
@click.option("--from-csv", type=click.Path(), help="CDVAE csv(.gz) or CIFs: one structure per "
              "row's composition, named after its material_id.")
@click.option("--steps", type=int, help="Denoising steps (default: the trained T).")
@click.option("--seed", default=0, show_default=True)
@click.option("--restarts", default=0, show_default=True,
              help="Rounds of restart sampling after the chain (0: the paper's sampler).")
@click.option("--restart-step", default=10, show_default=True,
              help="Step that each restart round diffuses the sample back to.")
@click.option("--batch-atoms", default=2000, show_default=True, help="Atoms per batch.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty --out.")
@click.option("--threads", type=int, help="CPU threads for torch [half the usable CPUs].")
@click.option("--no-progress", is_flag=True)
def main(checkpoint, out, composition, n, system, max_atoms, from_csv, steps, seed, restarts,
         restart_step, batch_atoms, device, overwrite, threads, no_progress):
    """Generate crystals with a trained GemsDiff model (Algorithm 2)."""
    from crystal_metrics.errors import CrystalMetricsError

    try:
        rows = run_sampling(checkpoint, out, composition, n, system, max_atoms, from_csv, steps,
                            seed, batch_atoms, device, overwrite, progress=not no_progress,
                            threads=threads, restarts=restarts, restart_step=restart_step)
    except (GemsDiffError, CrystalMetricsError) as exc:
        click.echo(f"gemsdiff-sample: error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {len(rows)} structures and manifest.csv to {out}", err=True)


if __name__ == "__main__":
    main()
