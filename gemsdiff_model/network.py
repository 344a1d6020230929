"""Denoiser f_theta(rho_t, x_t, z, t) -> (rho', x') (paper eqs. 7-11).

Atoms are embedded with a learned vector per atomic number plus the sinusoidal step encoding
(eq. 8). An encoder then a decoder pass messages on the periodic kNN graph of the current
lattice, using only invariant edge features: distances (Å), distances relative to the
neighbourhood radius, and angles between an edge and the nearest edges of the same atom. These
are E(3)- and SL3(Z)-invariant, so the heads are equivariant:

* positions (eq. 7): y^x_i = sum_k c_ik (x_k + tau - x_i) / K, a sum of edge vectors weighted by
  learned invariant scalars; x'_i = [x_i + y^x_i].
* lattice: a GL3 action Y = exp(S), S = c_0 I + sum_ik s_ik u_ik u_ik^T / (n K) (u: unit edge
  vectors, Cartesian), symmetric so it is rotation equivariant. ``lattice_decoder="equivariant"``
  applies it to the current cell (eq. 7: rho' = Y rho, fully equivariant, default);
  ``"cube"`` applies it to the unit cubic cell (eq. 11: rho' = Y), as the paper does in practice,
  which breaks equivariance of the output lattice (the paper says so as well).

Edges carry a smooth envelope that vanishes at the (k+1)-th neighbour distance, so neighbours
tied with the k-th one (symmetric crystals) cannot make the output depend on tie-breaking.
"""
from __future__ import annotations


import torch
from torch import nn

from .config import ModelConfig
from .geometry import wrap
from .graph import knn_graph


def step_embedding(t: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Sinusoidal encoding of the diffusion step (eq. 8): (B,) -> (B, dim)."""
    k = torch.arange(dim // 2, device=t.device, dtype=torch.float32)
    freq = base ** (-2 * k / dim)
    arg = t.float()[:, None] * freq[None, :]
    out = torch.stack([torch.sin(arg), torch.cos(arg)], -1).flatten(1)
    return torch.nn.functional.pad(out, (0, dim - out.shape[1]))


def envelope(u: torch.Tensor) -> torch.Tensor:
    """Polynomial cutoff (p = 6): 1 at u = 0, 0 with two zero derivatives at u >= 1."""
    u = u.clamp(0.0, 1.0)
    return 1 - 28 * u ** 6 + 48 * u ** 7 - 21 * u ** 8


def gaussians(x: torch.Tensor, start: float, stop: float, n: int) -> torch.Tensor:
    centres = torch.linspace(start, stop, n, device=x.device, dtype=x.dtype)
    width = (stop - start) / max(n - 1, 1)
    return torch.exp(-0.5 * ((x[..., None] - centres) / width) ** 2)


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


class MessageLayer(nn.Module):
    """h_i <- h_i + phi_u(h_i, sum_k env_ik phi_m(h_i, h_k, e_ik) / K)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.message = mlp(3 * hidden, hidden, hidden)
        self.update = mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h, nbr, edge, env):
        hi = h[:, None, :].expand(-1, nbr.shape[1], -1)
        m = self.message(torch.cat([hi, h[nbr], edge], -1)) * env[..., None]
        agg = m.mean(1)
        return self.norm(h + self.update(torch.cat([h, agg], -1))), m


class GemsDiffNet(nn.Module):
    """f_theta. forward(lattice (B,3,3) Å rows, frac (N,3), z (N,), t (B,), batch (N,),
    n_atoms (B,)) -> dict(lattice (B,3,3) Å, frac (N,3) in [0,1), disp (N,3) fractional y^x)."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        c = self.config = config or ModelConfig()
        if c.lattice_decoder not in ("equivariant", "cube"):
            raise ValueError(f"unknown lattice_decoder {c.lattice_decoder!r}")
        h = c.hidden
        self.atom_embedding = nn.Embedding(c.max_z + 1, h)
        self.global_embedding = nn.Linear(2, h)   # log volume per atom, log n_atoms
        self.angle_cos = nn.Linear(8, h // 2)
        self.angle_dist = nn.Linear(8, h // 2)
        self.edge_embedding = mlp(2 * c.n_rbf + h // 2, h, h)
        self.encoder = nn.ModuleList(MessageLayer(h) for _ in range(c.enc_layers))
        self.decoder = nn.ModuleList(MessageLayer(h) for _ in range(c.dec_layers))
        self.position_head = mlp(h, h, 1)
        self.lattice_edge_head = mlp(h, h, 1)
        self.lattice_trace_head = mlp(h + 2, h, 1)

    def forward(self, lattice, frac, z, t, batch, n_atoms):
        c = self.config
        dtype = self.atom_embedding.weight.dtype
        lattice, frac = lattice.to(dtype), frac.to(dtype)
        n_struct = lattice.shape[0]
        graph = knn_graph(lattice, frac, batch, n_atoms, c.knn)
        dist, cut = graph.dist, graph.cutoff
        env = envelope(dist / cut[:, None])                               # (N, K)
        unit = graph.cart / dist[..., None].clamp_min(1e-9)               # (N, K, 3)

        # invariant angle features: edge k against the A nearest edges a of the same atom
        a = min(c.n_angle, c.knn - 1)
        cos = torch.einsum("nkd,nad->nka", unit, unit[:, :a])             # (N, K, A)
        w_a = envelope(dist[:, :a] / dist[:, a:a + 1])                     # (N, A)
        ang = self.angle_cos(gaussians(cos, -1.0, 1.0, 8))                 # (N, K, A, h/2)
        rel_a = self.angle_dist(gaussians(dist[:, :a] / dist[:, a:a + 1], 0.0, 1.0, 8))
        ang = (ang * (rel_a * w_a[..., None])[:, None]).sum(2) / a        # (N, K, h/2)

        edge = self.edge_embedding(torch.cat([
            gaussians(dist, 0.0, c.rbf_max, c.n_rbf),
            gaussians(dist / cut[:, None], 0.0, 1.0, c.n_rbf), ang], -1))

        volume = torch.linalg.det(lattice).abs()
        glob = torch.stack([torch.log(volume / n_atoms.to(dtype)), torch.log(n_atoms.to(dtype))], -1)
        temb = step_embedding(t, c.hidden).to(dtype)
        h = self.atom_embedding(z) + temb[batch] + self.global_embedding(glob)[batch]   # eq. 8

        for layer in self.encoder:
            h, _ = layer(h, graph.nbr, edge, env)
        m = None
        for layer in self.decoder:
            h, m = layer(h, graph.nbr, edge, env)

        # positions (eq. 7): invariant scalars times edge vectors (fractional = Cartesian L^-1)
        coef = self.position_head(m)[..., 0] * env                        # (N, K)
        disp = (coef[..., None] * graph.frac).mean(1)                     # (N, 3)

        # lattice: symmetric Cartesian action from edge terms + isotropic (volume) term
        s_edge = (self.lattice_edge_head(m)[..., 0] * env)                # (N, K)
        outer = torch.einsum("nk,nki,nkj->nij", s_edge, unit, unit) / c.knn
        s_mat = torch.zeros(n_struct, 3, 3, dtype=dtype, device=lattice.device)
        s_mat = s_mat.index_add(0, batch, outer) / n_atoms.to(dtype)[:, None, None]
        pooled = torch.zeros(n_struct, c.hidden, dtype=dtype, device=lattice.device)
        pooled = pooled.index_add(0, batch, h) / n_atoms.to(dtype)[:, None]
        trace = self.lattice_trace_head(torch.cat([pooled, glob], -1))[:, 0]
        eye = torch.eye(3, dtype=dtype, device=lattice.device)
        action = torch.linalg.matrix_exp(s_mat + trace[:, None, None] * eye)   # (B, 3, 3) SPD
        if c.lattice_decoder == "equivariant":
            new_lattice = lattice @ action          # rows: (Y rho)^T = rho^T Y, Y symmetric
        else:
            new_lattice = action                    # eq. 11: Y applied to the unit cube
        return {"lattice": new_lattice, "frac": wrap(frac + disp), "disp": disp}
