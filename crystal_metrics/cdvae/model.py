"""DimeNet++ as CDVAE's `DimeNetPlusPlusWrap` (Gasteiger et al. 2020, via the Open Catalyst
Project and torch_geometric 2.0.1), in plain PyTorch: sums over edges and atoms are `index_add`.

Parameter names equal the checkpoint's (``encoder.`` prefix removed), so weights load strictly.
Activations are swish (x·sigmoid(x)).
"""
from __future__ import annotations

import torch
from torch import nn

from .basis import radial_basis, spherical_bessel_basis, spherical_harmonics
from .config import DimeNetConfig
from .graph import GraphBatch


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def _sum_into(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sum rows of `values` (M, F) into `size` rows by `index` (M,)."""
    return values.new_zeros((size, values.shape[1])).index_add_(0, index, values)


class BesselBasis(nn.Module):
    """Radial basis with learned frequencies `freq` (n_radial,)."""

    def __init__(self, n_radial: int):
        super().__init__()
        self.freq = nn.Parameter(torch.empty(n_radial))


class Embedding(nn.Module):
    """Initial edge messages from the two atoms' embeddings and the radial basis."""

    def __init__(self, n_radial: int, hidden: int):
        super().__init__()
        self.emb = nn.Embedding(95, hidden)  # atomic numbers 1-94
        self.lin_rbf = nn.Linear(n_radial, hidden)
        self.lin = nn.Linear(3 * hidden, hidden)

    def forward(self, numbers, rbf, i, j):
        x = self.emb(numbers)
        return _swish(self.lin(torch.cat([x[i], x[j], _swish(self.lin_rbf(rbf))], dim=-1)))


class Residual(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def forward(self, x):
        return x + _swish(self.lin2(_swish(self.lin1(x))))


class Interaction(nn.Module):
    """DimeNet++ interaction block: directional message passing over triplets."""

    def __init__(self, cfg: DimeNetConfig):
        super().__init__()
        hidden, basis, n_sbf = cfg.hidden_channels, cfg.basis_emb_size, cfg.num_spherical * cfg.num_radial
        self.lin_rbf1 = nn.Linear(cfg.num_radial, basis, bias=False)
        self.lin_rbf2 = nn.Linear(basis, hidden, bias=False)
        self.lin_sbf1 = nn.Linear(n_sbf, basis, bias=False)
        self.lin_sbf2 = nn.Linear(basis, cfg.int_emb_size, bias=False)
        self.lin_kj = nn.Linear(hidden, hidden)
        self.lin_ji = nn.Linear(hidden, hidden)
        self.lin_down = nn.Linear(hidden, cfg.int_emb_size, bias=False)
        self.lin_up = nn.Linear(cfg.int_emb_size, hidden, bias=False)
        self.layers_before_skip = nn.ModuleList(Residual(hidden) for _ in range(cfg.num_before_skip))
        self.lin = nn.Linear(hidden, hidden)
        self.layers_after_skip = nn.ModuleList(Residual(hidden) for _ in range(cfg.num_after_skip))

    def forward(self, x, rbf, sbf, kj, ji):
        x_ji = _swish(self.lin_ji(x))
        x_kj = _swish(self.lin_kj(x)) * self.lin_rbf2(self.lin_rbf1(rbf))
        x_kj = _swish(self.lin_down(x_kj))
        x_kj = x_kj[kj] * self.lin_sbf2(self.lin_sbf1(sbf))
        h = x_ji + _swish(self.lin_up(_sum_into(x_kj, ji, len(x))))
        for layer in self.layers_before_skip:
            h = layer(h)
        h = _swish(self.lin(h)) + x
        for layer in self.layers_after_skip:
            h = layer(h)
        return h


class Output(nn.Module):
    """DimeNet++ output block: edge messages -> per-atom outputs."""

    def __init__(self, cfg: DimeNetConfig):
        super().__init__()
        width = cfg.out_emb_channels
        self.lin_rbf = nn.Linear(cfg.num_radial, cfg.hidden_channels, bias=False)
        self.lin_up = nn.Linear(cfg.hidden_channels, width)
        self.lins = nn.ModuleList(nn.Linear(width, width) for _ in range(cfg.num_output_layers))
        self.lin = nn.Linear(width, cfg.num_targets, bias=False)

    def forward(self, x, rbf, i, n_atoms):
        x = self.lin_up(_sum_into(self.lin_rbf(rbf) * x, i, n_atoms))
        for lin in self.lins:
            x = _swish(lin(x))
        return self.lin(x)


class DimeNetPlusPlus(nn.Module):
    """CDVAE's property model: a batch of crystal graphs -> (structures, targets), in the units
    of the scaled training targets (see `PropertyModel` for the inverse scaling)."""

    def __init__(self, cfg: DimeNetConfig):
        super().__init__()
        self.cfg = cfg
        self.rbf = BesselBasis(cfg.num_radial)
        self.emb = Embedding(cfg.num_radial, cfg.hidden_channels)
        self.output_blocks = nn.ModuleList(Output(cfg) for _ in range(cfg.num_blocks + 1))
        self.interaction_blocks = nn.ModuleList(Interaction(cfg) for _ in range(cfg.num_blocks))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        cfg, dtype = self.cfg, self.rbf.freq.dtype
        vectors = batch.vectors.to(dtype)
        i, j, kj, ji = batch.target, batch.source, batch.triplet_kj, batch.triplet_ji
        n_atoms = len(batch.numbers)
        x = torch.linalg.vector_norm(vectors, dim=-1) / cfg.cutoff
        a, b = vectors[ji], vectors[kj]
        angle = torch.atan2(torch.linalg.vector_norm(torch.cross(a, b, dim=-1), dim=-1),
                            (a * b).sum(-1))
        rbf = radial_basis(x, self.rbf.freq, cfg.envelope_exponent)
        sbf = (spherical_bessel_basis(x, cfg.num_spherical, cfg.num_radial,
                                      cfg.envelope_exponent)[kj]
               * spherical_harmonics(angle, cfg.num_spherical)[:, :, None]).flatten(1)
        messages = self.emb(batch.numbers, rbf, i, j)
        atoms = self.output_blocks[0](messages, rbf, i, n_atoms)
        for interaction, output in zip(self.interaction_blocks, self.output_blocks[1:]):
            messages = interaction(messages, rbf, sbf, kj, ji)
            atoms = atoms + output(messages, rbf, i, n_atoms)
        total = _sum_into(atoms, batch.structure, batch.n_structures)
        if cfg.readout == "sum":
            return total
        count = torch.bincount(batch.structure, minlength=batch.n_structures)
        return total / count.clamp(min=1).to(dtype)[:, None]
