"""Building blocks of the denoiser: embeddings, the interaction block, the output heads.

Shapes: N atoms, B structures, E pairs (``graph.pair_index``), H = hidden width.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import silu

#: the noise level tau in [0, 1] is encoded as the step t = STEP_SCALE * tau of eq. 8
STEP_SCALE = 1000.0


def step_encoding(tau: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Eq. 8 sinusoids of the step t = 1000 tau: (B,) -> (B, dim), [sin, cos] interleaved."""
    k = torch.arange(dim // 2, device=tau.device, dtype=torch.float32)
    arg = (STEP_SCALE * tau.float())[:, None] * base ** (-2 * k / dim)
    out = torch.stack([torch.sin(arg), torch.cos(arg)], -1).flatten(1)
    return nn.functional.pad(out, (0, dim - out.shape[1]))


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


def mean_per_structure(x: torch.Tensor, index: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of rows x (M, F) grouped by ``index`` (M,) into len(counts) groups of size counts."""
    out = torch.zeros(len(counts), x.shape[1], dtype=x.dtype, device=x.device)
    return out.index_add(0, index, x) / counts.to(x.dtype)[:, None]


class AtomEmbedding(nn.Module):
    """Eq. 8: a learned vector per atomic number plus the sinusoidal step encoding."""

    def __init__(self, max_z: int, hidden: int):
        super().__init__()
        self.species = nn.Embedding(max_z + 1, hidden)

    def forward(self, z: torch.Tensor, step: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return self.species(z) + step[batch]


class Conditioning(nn.Module):
    """Per-structure context (B, H) from the step encoding and the standardised lattice
    coordinates of the current cell; every interaction block is modulated by it."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = mlp(hidden + 6, hidden, hidden)

    def forward(self, step: torch.Tensor, lattice_coords: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([step, lattice_coords], 1))


class InteractionBlock(nn.Module):
    """One message-passing layer over all pairs of a cell (CSPNet-style, conditioned):

    u_i = LN(h_i) (1 + gamma_b) + beta_b  with (gamma_b, beta_b) from the context of structure b,
    m_ij = phi(u_i, u_j, pair_ij, context_b)  (2-layer MLP; its first layer is split per input,
    so atom terms are computed per atom, not per pair),
    h_i <- h_i + psi(u_i, mean_j m_ij).
    """

    def __init__(self, hidden: int, pair_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(hidden, 2 * hidden)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.src = nn.Linear(hidden, hidden)
        self.dst = nn.Linear(hidden, hidden, bias=False)
        self.pair = nn.Linear(pair_dim, hidden, bias=False)
        self.context = nn.Linear(hidden, hidden, bias=False)
        # SiLU, W, SiLU, applied by forward; a Sequential so that checkpoints keep message.1.*
        self.message = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.update = mlp(2 * hidden, hidden, hidden)

    def forward(self, h, context, pair, src, dst, structure, batch, n_atoms):
        gamma, beta = self.film(context).chunk(2, dim=1)
        u = self.norm(h) * (1 + gamma[batch]) + beta[batch]
        # the (E, H) message is built in one buffer, and activated in place when no gradient
        # is kept (sampling): same values, far less memory traffic
        m = self.src(u).index_select(0, src)
        m += self.dst(u).index_select(0, dst)
        m += self.pair(pair)
        m += self.context(context).index_select(0, structure)
        inplace = not torch.is_grad_enabled()
        m = silu(self.message[1](silu(m, inplace=inplace)), inplace=inplace)
        agg = mean_per_structure(m, src, n_atoms[batch])     # mean over the n_b partners j
        return h + self.update(torch.cat([u, agg], 1))


class PositionHead(nn.Module):
    """Per-atom 3-vector in fractional coordinates, with its mean over the cell removed (the
    inputs are translation invariant, so a common shift of all atoms cannot be predicted)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, 3, bias=False)

    def forward(self, h, batch, n_atoms):
        y = self.out(self.norm(h))
        return y - mean_per_structure(y, batch, n_atoms)[batch]


class LatticeHead(nn.Module):
    """Per-structure 6-vector (standardised lattice coordinates) from the mean atom features
    and the context."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.out = mlp(2 * hidden, hidden, 6)

    def forward(self, h, context, batch, n_atoms):
        pooled = mean_per_structure(self.norm(h), batch, n_atoms)
        return self.out(torch.cat([pooled, context], 1))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

