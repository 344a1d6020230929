"""The metrics as `torchmetrics.Metric`s, for training loops (the `[torchmetrics]` extra):
`FrechetALIGNNDistance`, `KernelALIGNNDistance`, `DensityEMD`, `Validity`.

`update()` takes the generated structures of a step, either as a list of pymatgen `Structure`,
ASE `Atoms` or `Crystal`, or as the tensors of a generator's sampling loop in CDVAE's (DiffCSP's,
FlowMM's) batch layout: `lattice` (B, 3, 3) with the lattice vectors as rows in Å,
`frac_coords` (N, 3) fractional coordinates and `numbers` (N,) atomic numbers of all atoms of
the batch, one structure after another, and `num_atoms` (B,) atoms per structure. `compute()`
returns the value as a float64 tensor. The states are float64 sums (count, sum and sum of outer
products of the latents) or per-structure values (latents for KID, densities for the EMD),
reduced with `dist_reduce_fx`, so that the value under DDP is the value of all processes' samples
together. Structures that cannot be used (NaN coordinates, a singular cell...) are left out of
the FAD, KID and density EMD and count as invalid in `Validity`.

The reference is a shipped reference's name (`mp20-test`), a statistics file, a `FeatureSet` or
any structure set `read_structures` accepts (embedded once, when the metric is made).
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from .crystal import Crystal
from .errors import CrystalMetricsError, StructureError
from .failures import StructureFailure
from .features import FeatureSet
from .features.statistics import ExtractorId
from .io import StructureSet, read_structures, require_readable
from .metrics.distribution import densities, emd
from .metrics.frechet import Moments, frechet_distance
from .metrics.kid import kernel_distance
from .metrics.smact_check import DEFAULT_OXIDATION_STATES
from .metrics.validity import validity
from .references import named
from .scoring import FeatureSource, is_statistics_file


def structures_of(structures=None, *, lattice=None, frac_coords=None, numbers=None,
                  num_atoms=None) -> StructureSet:
    """The structures of one `update()` call (see the module doc for the two layouts); an
    unusable structure is a `StructureFailure` of the set."""
    if structures is not None:
        if lattice is not None or frac_coords is not None:
            raise CrystalMetricsError("give either structures or the batch tensors, not both")
        return read_structures(structures)
    if any(t is None for t in (lattice, frac_coords, numbers, num_atoms)):
        raise CrystalMetricsError("give structures, or lattice, frac_coords, numbers and "
                                  "num_atoms")
    lattice, frac, z, counts = (torch.as_tensor(t).detach().cpu().numpy()
                                for t in (lattice, frac_coords, numbers, num_atoms))
    counts = counts.astype(int).reshape(-1)
    if len(lattice) != len(counts) or counts.sum() != len(frac) or len(frac) != len(z):
        raise CrystalMetricsError(f"batch of {len(lattice)} lattices, {len(counts)} num_atoms "
                                  f"(sum {counts.sum()}), {len(frac)} coordinates and {len(z)} "
                                  "atomic numbers")
    names, crystals, errors = [], [], []
    for i, (cell, start, count) in enumerate(zip(lattice, np.cumsum(counts) - counts, counts)):
        try:
            crystals.append(Crystal.checked(cell, frac[start:start + count],
                                            z[start:start + count]))
            names.append(str(i))
        except StructureError as exc:
            errors.append(StructureFailure(str(i), str(exc)))
    return StructureSet(names, crystals, errors)


def _reference_set(reference, features: FeatureSource | None = None) -> FeatureSet:
    """The `FeatureSet` of `reference` (embedded by `features` if it is structures)."""
    return (features or FeatureSource(progress=False))(reference)


class _StructureMetric(Metric):
    """A metric over the generated structures of many `update()` calls."""

    full_state_update = False
    is_differentiable = False

    def update(self, structures=None, *, lattice=None, frac_coords=None, numbers=None,
               num_atoms=None) -> None:
        """Add the structures of one step (a list of structures, or the batch tensors)."""
        self._add(structures_of(structures, lattice=lattice, frac_coords=frac_coords,
                                numbers=numbers, num_atoms=num_atoms))

    def _add(self, structures: StructureSet) -> None:
        raise NotImplementedError

    def _float64(self, name: str, shape=(), reduce: str = "sum") -> None:
        default = [] if reduce == "cat" else torch.zeros(shape, dtype=torch.float64)
        self.add_state(name, default=default, dist_reduce_fx=reduce)


class _LatentMetric(_StructureMetric):
    """A metric of ALIGNN latents: `features` (a `FeatureSource`, default ALIGNN-FF on CUDA when
    available, no cache) embeds the generated structures and, if it is structures, the
    reference; both must come from one extractor."""

    higher_is_better = False

    def __init__(self, reference, features: FeatureSource | None = None, **kwargs):
        super().__init__(**kwargs)
        self.features = features or FeatureSource(cache=False, progress=False)
        self.reference = _reference_set(reference, self.features)
        mine = ExtractorId.of(self.features.extractor)
        if (mine.sha256, mine.dim, mine.variant) != (self.reference.extractor.sha256,
                                                     self.reference.extractor.dim,
                                                     self.reference.extractor.variant):
            raise CrystalMetricsError(f"the reference was embedded by {self.reference.extractor}"
                                      f", the metric embeds with {mine}")

    def _latents(self, structures: StructureSet) -> np.ndarray:
        return self.features.embed(structures).features


class FrechetALIGNNDistance(_LatentMetric):
    """FAD between the generated structures and the reference (as `crystal_metrics.fad`).
    States: `n`, `total` (d,), `outer` (d, d), float64 sums of the latents' moments."""

    def __init__(self, reference, features: FeatureSource | None = None, **kwargs):
        super().__init__(reference, features, **kwargs)
        d = self.reference.extractor.dim
        self._float64("n")
        self._float64("total", (d,))
        self._float64("outer", (d, d))

    def _add(self, structures: StructureSet) -> None:
        moments = Moments.of(self._latents(structures))
        self.n += moments.n
        self.total += torch.as_tensor(moments.total, device=self.total.device)
        self.outer += torch.as_tensor(moments.outer, device=self.outer.device)

    def compute(self) -> torch.Tensor:
        moments = Moments(int(self.n.item()), self.total.cpu().numpy(), self.outer.cpu().numpy())
        if moments.n < 2:
            raise CrystalMetricsError(f"FAD needs at least 2 generated structures, got "
                                      f"{moments.n}")
        return torch.tensor(frechet_distance(*moments.gaussian(), *self.reference.gaussian),
                            dtype=torch.float64)


class KernelALIGNNDistance(_LatentMetric):
    """KID between the generated structures and the reference's latents (as
    `crystal_metrics.fad`'s `kid`: mean over `n_subsets` random subsets of
    min(`subset_size`, n_gen / 2, n_ref / 2)). State: the latents (concatenated)."""

    def __init__(self, reference, features: FeatureSource | None = None, n_subsets: int = 100,
                 subset_size: int = 1000, **kwargs):
        super().__init__(reference, features, **kwargs)
        self.n_subsets, self.subset_size = n_subsets, subset_size
        self._float64("latents", reduce="cat")

    def _add(self, structures: StructureSet) -> None:
        self.latents.append(torch.as_tensor(self._latents(structures), dtype=torch.float64))

    def compute(self) -> torch.Tensor:
        latents = _joined(self.latents).reshape(-1, self.reference.extractor.dim)
        mean, _, _ = kernel_distance(latents, self.reference.features, self.n_subsets,
                                     self.subset_size)
        return torch.tensor(mean, dtype=torch.float64)


class DensityEMD(_StructureMetric):
    """EMD between the mass densities (g/cm³) of the generated structures and of the reference
    (a name or statistics file: its densities; structures: theirs). State: the densities."""

    higher_is_better = False

    def __init__(self, reference, **kwargs):
        super().__init__(**kwargs)
        if isinstance(reference, FeatureSet) or is_statistics_file(reference) or named(reference):
            self.reference = _reference_set(reference).densities
        else:
            self.reference = densities(require_readable(read_structures(reference), "REF")
                                       .crystals)
        self._float64("densities", reduce="cat")

    def _add(self, structures: StructureSet) -> None:
        self.densities.append(torch.as_tensor(densities(structures.crystals),
                                              dtype=torch.float64).reshape(-1))

    def compute(self) -> torch.Tensor:
        return torch.tensor(emd(_joined(self.densities), self.reference), dtype=torch.float64)


class Validity(_StructureMetric):
    """Fraction of valid generated structures (structural and compositional, CDVAE's
    definition, `oxidation_states`: the SMACT table); unusable structures count as invalid.
    States: `n`, `n_structural`, `n_compositional`, `n_valid`."""

    higher_is_better = True

    def __init__(self, oxidation_states: str = DEFAULT_OXIDATION_STATES, **kwargs):
        super().__init__(**kwargs)
        self.oxidation_states = oxidation_states
        for name in ("n", "n_structural", "n_compositional", "n_valid"):
            self._float64(name)

    def _add(self, structures: StructureSet) -> None:
        self.n += len(structures) + len(structures.errors)
        if len(structures):
            result = validity(structures.crystals, self.oxidation_states)
            self.n_structural += int(result.structural.sum())
            self.n_compositional += int(result.compositional.sum())
            self.n_valid += int(result.overall.sum())

    def compute(self) -> torch.Tensor:
        """The overall validity fraction."""
        return self.n_valid / self.n


def _joined(values) -> np.ndarray:
    """A list state (or, after a sync, its tensor) as one float64 array."""
    if isinstance(values, torch.Tensor):
        return values.cpu().numpy()
    return torch.cat(values).cpu().numpy() if values else np.zeros(0)


__all__ = ["DensityEMD", "FrechetALIGNNDistance", "KernelALIGNNDistance", "Validity",
           "structures_of"]
