"""Energies per atom from the universal interatomic potential CHGNet (the `[mlip]` extra).

CHGNet 0.3.0 (Deng et al. 2023, trained on MPtrj) predicts the total energy per atom on the
Materials Project GGA/GGA+U scale (eV/atom; not a formation energy). Its weights ship inside
the chgnet wheel: nothing is downloaded. Optionally each structure is first relaxed for a few
FIRE steps (positions and cell, ASE's FrechetCellFilter), and how far its atoms moved is reported.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .crystal import Crystal
from .device import resolve_device
from .errors import CrystalMetricsError, MissingExtraError
from .failures import StructureFailure, failures_at
from .features.embedding import MAX_ATOMS, split_by_size
from .io import read_structures, require_readable
from .progress import progress
from .scoring import is_statistics_file

MODEL_VERSION = "0.3.0"


def relaxation_rmsd(before: Crystal, after: Crystal) -> float:
    """Root-mean-square distance (Å) the atoms moved relative to the cell, rigid translation
    removed: fractional displacements (minimum image) expressed in the relaxed cell. A change of
    the cell alone moves nothing."""
    from ase.geometry import find_mic

    displacement, _ = find_mic((after.frac_coords - before.frac_coords) @ after.lattice,
                               after.lattice, pbc=True)
    displacement -= displacement.mean(axis=0)
    return float(np.sqrt((displacement ** 2).sum(axis=1).mean()))


@dataclass(frozen=True)
class EnergySet:
    """CHGNet results for the structures of one set that it could handle.

    Attributes:
        names: (n,) structure names.
        energies: (n,) energy per atom, eV/atom (after relaxation, if any).
        rmsd: (n,) distance each structure moved while relaxing (Å), None without relaxation.
        errors: `StructureFailure`s of the structures left out: unreadable, or CHGNet failed.
    """

    names: list[str]
    energies: np.ndarray
    rmsd: np.ndarray | None
    errors: list[StructureFailure]


def _reason(what: str, exc: Exception) -> str:
    return ": ".join([what, type(exc).__name__, *str(exc).strip().splitlines()[:1]])


class Chgnet:
    """CHGNet energies per atom of structure sets, optionally after a short relaxation.

    Args:
        device: torch device (default: CHGNet's choice, CUDA when available).
        batch_size: structures per forward pass.
        relax_steps: at most this many FIRE steps (positions and cell) before the energy; 0: none.
        fmax: a relaxation stops early once every force is below this, eV/Å.
        progress: show progress bars (default: on a terminal).
        max_atoms: structures with more atoms are left out and listed (CHGNet needs about
            2.3 GB of memory per 1,000 atoms); None: no limit.
    """

    def __init__(self, device: str | None = None, batch_size: int = 32, relax_steps: int = 0,
                 fmax: float = 0.1, progress: bool | None = None,
                 max_atoms: int | None = MAX_ATOMS):
        self.device, self.batch_size, self.progress = device, batch_size, progress
        self.relax_steps, self.fmax, self.max_atoms = relax_steps, fmax, max_atoms

    @cached_property
    def model(self):
        """The pretrained CHGNet, loaded once from the chgnet wheel."""
        try:
            from chgnet.model import CHGNet
        except ImportError:
            raise MissingExtraError("CHGNet is not installed: pip install 'crystal-metrics[mlip]'"
                                    ) from None
        device = str(resolve_device(self.device))
        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its size even so
            return CHGNet.load(model_name=MODEL_VERSION, use_device=device, verbose=False)

    @cached_property
    def _optimizer(self):
        model = self.model  # first: a missing chgnet is a MissingExtraError
        from chgnet.model import StructOptimizer

        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device
            return StructOptimizer(model, optimizer_class="FIRE",
                                   use_device=str(resolve_device(self.device)),
                                   on_isolated_atoms="error")

    def energies(self, crystals: list[Crystal]) -> tuple[np.ndarray, dict[int, str]]:
        """Energy per atom (eV/atom) of each crystal, shape (n,), NaN where CHGNet fails, and
        {position: reason} of those (e.g. an atom without neighbours within 6 Å)."""
        model, graphs, failures = self.model, [], {}
        for i, crystal in enumerate(crystals):
            try:
                graphs.append(model.graph_converter(crystal.to_pymatgen()))
            except Exception as exc:  # noqa: BLE001 - isolated atoms, bond-graph failures
                failures[i] = _reason("CHGNet graph failed", exc)
        done = [i for i in range(len(crystals)) if i not in failures]
        energies = np.full(len(crystals), np.nan)
        with progress(len(graphs), "energies (chgnet)", "struct", self.progress) as bar:
            for start in range(0, len(graphs), self.batch_size):
                batch = graphs[start:start + self.batch_size]
                with warnings.catch_warnings():  # CHGNet's own use of torch.tensor warns
                    warnings.simplefilter("ignore", UserWarning)
                    predictions = model.predict_graph(batch, task="e", batch_size=len(batch))
                predictions = [predictions] if isinstance(predictions, dict) else predictions
                energies[done[start:start + len(batch)]] = [float(p["e"]) for p in predictions]
                bar.update(len(batch))
        return energies, failures

    def relax(self, crystal: Crystal) -> tuple[Crystal, float]:
        """`crystal` after at most `relax_steps` FIRE steps, and the RMSD it moved (Å)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = self._optimizer.relax(crystal.to_pymatgen(), fmax=self.fmax,
                                           steps=self.relax_steps, relax_cell=True,
                                           verbose=False, assign_magmoms=False)
        relaxed = Crystal.from_pymatgen(result["final_structure"])
        return relaxed, relaxation_rmsd(crystal, relaxed)

    def __call__(self, source) -> EnergySet:
        """Energies (and relaxation RMSDs) of anything `read_structures` accepts."""
        refuse_statistics_file(source)
        structures = require_readable(read_structures(source, progress=self.progress))
        structures, too_large = split_by_size(
            structures, self.max_atoms, "CHGNet needs about 2.3 GB of memory per 1,000 atoms")
        crystals, failures = list(structures.crystals), {}
        rmsd = np.full(len(crystals), np.nan)
        if self.relax_steps:
            _ = self._optimizer  # a missing extra is an error, not a failed structure
            with progress(len(crystals), "relaxing (chgnet)", "struct", self.progress) as bar:
                for i in range(len(crystals)):
                    try:
                        crystals[i], rmsd[i] = self.relax(crystals[i])
                    except Exception as exc:  # noqa: BLE001 - CHGNet or ASE on an unusable one
                        failures[i] = _reason("CHGNet relaxation failed", exc)
                    bar.update()
        energies, energy_failures = self.energies(crystals)
        failures = {**energy_failures, **failures}
        keep = [i for i in range(len(crystals)) if i not in failures]
        errors = list(structures.errors) + too_large + failures_at(structures.names, failures)
        return EnergySet([structures.names[i] for i in keep], energies[keep],
                         rmsd[keep] if self.relax_steps else None, errors)


def refuse_statistics_file(source) -> None:
    """CHGNet needs structures: a statistics file is an error naming it."""
    if is_statistics_file(source):
        raise CrystalMetricsError(f"{source} is a statistics file (ALIGNN energies); CHGNet "
                                  "needs the structures")
