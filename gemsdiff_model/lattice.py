"""Standardised lattice coordinates: the state of the lattice diffusion.

A cell is described by the 6 metric coordinates of the paper's Lie-algebra chart
(``geometry.metric_coordinates``: 5 shape, 1 volume; no rotation), with the volume taken per
atom, log(V / n) / sqrt(3), so that it does not grow with the cell size, then standardised
coordinate by coordinate with the mean and standard deviation of the training set. A
standard-normal vector is then a plausible cell for any composition, which makes N(0, I) the
prior of the lattice diffusion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .geometry import lattice_from_metric, metric_coordinates

_SQRT3 = math.sqrt(3.0)


@dataclass
class LatticeStandardizer:
    """Per-coordinate mean and std (6,) float64 of the per-atom metric coordinates."""

    mean: torch.Tensor
    std: torch.Tensor

    @staticmethod
    def _per_atom(lattice: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        c = metric_coordinates(lattice)
        return torch.cat([c[:, :5], c[:, 5:] - torch.log(n_atoms.to(c))[:, None] / _SQRT3], 1)

    @classmethod
    def fit(cls, lattice: torch.Tensor, n_atoms: torch.Tensor) -> LatticeStandardizer:
        """Statistics of lattices (B, 3, 3) Å with n_atoms (B,); std floored at 1e-3."""
        c = cls._per_atom(lattice, n_atoms)
        std = c.std(0) if len(c) > 1 else torch.ones(6, dtype=torch.float64)
        return cls(mean=c.mean(0), std=std.clamp_min(1e-3))

    def encode(self, lattice: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        """Lattices (B, 3, 3) Å rows, n_atoms (B,) -> standardised coordinates (B, 6) float64."""
        c = self._per_atom(lattice, n_atoms)
        return (c - self.mean.to(c.device)) / self.std.to(c.device)

    def decode(self, coords: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        """Standardised coordinates (B, 6) -> lattices (B, 3, 3) Å rows float64 (symmetric
        representative of the metric: the orientation is arbitrary)."""
        c = coords.to(torch.float64) * self.std.to(coords.device) + self.mean.to(coords.device)
        volume = c[:, 5:] + torch.log(n_atoms.to(c))[:, None] / _SQRT3
        return lattice_from_metric(torch.cat([c[:, :5], volume], 1))

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, d: dict) -> LatticeStandardizer:
        return cls(torch.tensor(d["mean"], dtype=torch.float64),
                   torch.tensor(d["std"], dtype=torch.float64))
