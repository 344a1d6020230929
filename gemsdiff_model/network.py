"""Denoiser f_theta(rho_t, x_t, z, t) -> (rho', x') (paper eqs. 7-11).

Atoms are embedded with a learned vector per atomic number plus the sinusoidal step encoding
(eq. 8). An encoder then a decoder pass messages on the periodic kNN graph of the current
lattice, using only invariant edge features: distances (Å), distances relative to the
neighbourhood radius, and angles between an edge and the nearest edges of the same atom. These
are E(3)- and SL3(Z)-invariant, so the heads are equivariant:

* positions (eq. 7): y^x_i = sum_k c_ik (x_k + tau - x_i) / K, a sum of edge vectors weighted by
  learned invariant scalars; x'_i = [x_i + y^x_i].
* lattice: a symmetric positive definite Cartesian action Y (rotation equivariant).
  ``lattice_head="lsq"`` (default): every edge predicts an invariant log stretch lambda_ik of its
  length; X = Y^2 is the least-squares fit u^T X u ~ exp(2 lambda) over the structure's edges
  (6x6 normal equations built from the edge terms u_ik u_ik^T, as in eq. 7), Y = sqrt(X) times
  an isotropic (volume) factor exp(c_0). ``"edge"``: Y = exp(S), S = c_0 I + sum_ik s_ik u_ik u_ik^T
  / (n K) with s_ik predicted directly (the first version). ``lattice_scale`` = c_out(t)
  multiplies lambda, s and c_0 (noise-level preconditioning, ``diffusion.Schedule``).
  ``lattice_head="coords"`` (option, not SL3(Z)-equivariant): an MLP on (pooled atom features,
  globals, step encoding, the 6 shape + volume coordinates S_t of the cell
  in the basis it is given in) predicts S_0, the coordinates of the clean cell; returned as
  ``lattice_coords`` (B, 6), mapped to a cell by ``diffusion.predicted_lattice``. E(3)-invariant
  (S depends only on the metric) but basis dependent: it relies on training cells given in the
  canonical basis and on the sampler not re-reducing the noisy chain (see README).
  ``lattice_decoder="equivariant"`` applies Y to the current cell (eq. 7: rho' = Y rho, fully
  equivariant, default); ``"cube"`` applies it to the unit cubic cell (eq. 11: rho' = Y), as the
  paper does in practice, which breaks equivariance of the output lattice (the paper says so).

Edges carry a smooth envelope that vanishes at the (k+1)-th neighbour distance, so neighbours
tied with the k-th one (symmetric crystals) cannot make the output depend on tie-breaking.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .geometry import BASIS, lattice_to_vector, wrap
from .graph import knn_graph

#: ridge (towards X = I) of the least-squares lattice head, relative to the mean edge weight
LSQ_RIDGE = 1e-4
#: smallest eigenvalue allowed for the fitted metric change X (stretch >= 0.1)
MIN_EIG = 1e-2


def sqrtm_spd(x: torch.Tensor, iterations: int = 24) -> torch.Tensor:
    """Square root of SPD (B, 3, 3) matrices by the coupled Newton-Schulz iteration: only matrix
    products, so it commutes with rotations and has stable gradients when eigenvalues coincide
    (unlike eigh)."""
    norm = torch.linalg.matrix_norm(x).clamp_min(1e-30)[:, None, None]   # Frobenius
    eye = torch.eye(3, dtype=x.dtype, device=x.device).expand_as(x)
    y, z = x / norm, eye
    for _ in range(iterations):
        tmat = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ tmat, tmat @ z
    return y * norm.sqrt()


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
    n_atoms (B,)) -> dict(lattice (B,3,3) Å, frac (N,3) in [0,1), disp (N,3) fractional y^x);
    the ``coords`` head returns lattice_coords (B,6) instead of lattice."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        c = self.config = config or ModelConfig()
        if c.lattice_decoder not in ("equivariant", "cube"):
            raise ValueError(f"unknown lattice_decoder {c.lattice_decoder!r}")
        if c.lattice_head not in ("lsq", "edge", "coords"):
            raise ValueError(f"unknown lattice_head {c.lattice_head!r}")
        h = c.hidden
        self.atom_embedding = nn.Embedding(c.max_z + 1, h)
        self.global_embedding = nn.Linear(2, h)   # log volume per atom, log n_atoms
        self.angle_cos = nn.Linear(8, h // 2)
        self.angle_dist = nn.Linear(8, h // 2)
        self.edge_embedding = mlp(2 * c.n_rbf + h // 2, h, h)
        self.encoder = nn.ModuleList(MessageLayer(h) for _ in range(c.enc_layers))
        self.decoder = nn.ModuleList(MessageLayer(h) for _ in range(c.dec_layers))
        self.position_head = mlp(h, h, 1)
        if c.lattice_head == "coords":
            # x_0 of the 6 shape + volume coordinates from (pooled atoms, globals, S_t, step)
            self.lattice_coords_head = nn.Sequential(
                nn.Linear(2 * h + 2 + 6, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 6))
        else:
            self.lattice_edge_head = mlp(h + (c.lattice_head == "lsq"), h, 1)
            self.lattice_trace_head = mlp(h + 2, h, 1)

    def forward(self, lattice, frac, z, t, batch, n_atoms, lattice_scale=None, position_scale=None):
        """``lattice_scale`` (B,) optional: c_out(t) of the noise-level preconditioning
        (``diffusion.Schedule.lattice_scale``); multiplies the raw lattice outputs (edge log
        stretches / coefficients and the volume term), so 0 returns the input cell.
        ``position_scale`` (B,) optional: sigma^x_t (``Schedule.position_scale``), multiplies
        the displacement y^x."""
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
        if position_scale is not None:
            disp = position_scale.to(dtype)[batch, None] * disp

        # lattice: symmetric Cartesian action from edge terms + isotropic (volume) term
        pooled = torch.zeros(n_struct, c.hidden, dtype=dtype, device=lattice.device)
        pooled = pooled.index_add(0, batch, h) / n_atoms.to(dtype)[:, None]
        if c.lattice_head == "coords":
            # E(3)-invariant (S_t depends only on the metric), not SL3(Z)-equivariant: S_t are
            # the coordinates of the cell in the basis it is given in (see module doc)
            s_t = lattice_to_vector(lattice.detach())[:, 3:].to(dtype)
            raw = self.lattice_coords_head(torch.cat([pooled, glob, s_t, temb], -1))
            return {"lattice_coords": raw, "frac": wrap(frac + disp), "disp": disp}
        trace = self.lattice_trace_head(torch.cat([pooled, glob], -1))[:, 0]
        if lattice_scale is not None:      # c_out(t): the raw output has unit scale at every t
            trace = lattice_scale.to(dtype) * trace
        eye = torch.eye(3, dtype=dtype, device=lattice.device)
        if c.lattice_head == "lsq":
            scale_atoms = None if lattice_scale is None else lattice_scale.to(dtype)[batch]
            action = self._lsq_action(m, dist, unit, env, batch, n_struct, scale_atoms) \
                * torch.exp(trace)[:, None, None]                            # (B, 3, 3) SPD
        else:
            s_edge = (self.lattice_edge_head(m)[..., 0] * env)            # (N, K)
            outer = torch.einsum("nk,nki,nkj->nij", s_edge, unit, unit) / c.knn
            s_mat = torch.zeros(n_struct, 3, 3, dtype=dtype, device=lattice.device)
            s_mat = s_mat.index_add(0, batch, outer) / n_atoms.to(dtype)[:, None, None]
            if lattice_scale is not None:
                s_mat = lattice_scale.to(dtype)[:, None, None] * s_mat
            action = torch.linalg.matrix_exp(s_mat + trace[:, None, None] * eye)   # SPD
        if c.lattice_decoder == "equivariant":
            new_lattice = lattice @ action          # rows: (Y rho)^T = rho^T Y, Y symmetric
        else:
            new_lattice = action                    # eq. 11: Y applied to the unit cube
        return {"lattice": new_lattice, "frac": wrap(frac + disp), "disp": disp}

    def _lsq_action(self, m, dist, unit, env, batch, n_struct, scale=None):
        """SPD action Y (B, 3, 3): each edge k asks for a stretch r_k = exp(lambda_k) of its
        length; the metric change X = Y^2 is their least-squares fit, u_k^T X u_k ~ r_k^2 over the
        structure's edges (weights env, small ridge towards X = I), Y = sqrt(X).

        The normal equations are built from the edge terms u_k u_k^T (the edge vector field of
        eq. 7) and invariant predictions, so Y is E(3)-equivariant and SL3(Z)-invariant. The fit
        is exact for consistent stretches, unlike fitting log stretches with u^T log(Y) u (first
        order only). ``scale`` (N,) multiplies lambda. Solved in float64."""
        dtype, dev = m.dtype, m.device
        lam = self.lattice_edge_head(torch.cat([m, torch.log(dist.clamp_min(1e-6))[..., None]],
                                               -1))[..., 0]               # (N, K)
        if scale is not None:
            lam = scale[:, None] * lam
        f64 = torch.float64
        sym = BASIS[3:].to(device=dev, dtype=f64)                         # (6, 3, 3) orthonormal
        a = torch.einsum("nki,nkj,pij->nkp", unit.to(f64), unit.to(f64), sym)   # (N, K, 6)
        w = env.to(f64)                                                    # (N, K)
        r2 = torch.exp(2 * lam.to(f64).clamp(-3.0, 3.0))                  # squared stretches
        gram = torch.zeros(n_struct, 6, 6, dtype=f64, device=dev).index_add(
            0, batch, torch.einsum("nk,nkp,nkq->npq", w, a, a))
        rhs = torch.zeros(n_struct, 6, dtype=f64, device=dev).index_add(
            0, batch, torch.einsum("nk,nk,nkp->np", w, r2, a))
        wsum = torch.zeros(n_struct, dtype=f64, device=dev).index_add(0, batch, w.sum(1))
        wsum = wsum.clamp_min(1e-12)
        eye3 = torch.eye(3, dtype=f64, device=dev)
        ident = torch.einsum("ij,pij->p", eye3, sym)                       # I in the sym basis
        ridge = LSQ_RIDGE * torch.eye(6, dtype=f64, device=dev)
        coef = torch.linalg.solve(gram / wsum[:, None, None] + ridge,
                                  rhs / wsum[:, None] + LSQ_RIDGE * ident)
        x = torch.einsum("bp,pij->bij", coef, sym)                         # (B, 3, 3) symmetric
        with torch.no_grad():   # keep X positive definite (a constant shift, no eigh gradient)
            low = torch.linalg.eigvalsh(x)[:, 0]
            shift = (MIN_EIG - low).clamp_min(0.0)
        x = x + shift[:, None, None] * eye3
        return sqrtm_spd(x).to(dtype)
