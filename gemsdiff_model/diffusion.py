"""Forward (corruption) processes and training losses; no network, no sampler.

Positions (torus T^3 = R^3 / Z^3, fractional coordinates): q(x_t | x_0) = [N(x_0, (1 - abar_t) I)]_T
(eq. 16, variance exploding, wrapped), linear beta^x from 1e-6 to 2e-3, prior U(0, 1)^3.
Lattice: DDPM on the 9-vector v = lattice_to_vector(rho) (eqs. 13-14),
v_t = sqrt(abar_t) v_0 + sqrt(1 - abar_t) eps, linear beta^rho from 1e-5 to 1e-1, prior N(0, I)
mapped to a cell by ``vector_to_lattice``.

Note on the schedule of Table 1: with beta^x in [1e-6, 2e-3] and T = 100, the marginal std of
the torus process at t = T is sqrt(1 - abar_T) ~ 0.31 (fractional units), close to but not
exactly uniform (first Fourier coefficient exp(-2 pi^2 0.095) ~ 0.15); the paper's uniform prior
is an approximation there. The sampler nevertheless starts from U(0, 1) as in Algorithm 2.

Losses: L^x (eq. 20) regresses the predicted displacement y^x on the shortest-path target
min_image(x_0 - x_t); L^rho compares standardised lattice parameters p(rho) of the predicted
and the clean cell in canonical bases (rotation and basis invariant, see ``lattice_loss``). The paper's eq. 15 writes the posterior mean
mu_t(x_t, x_0) as target while its Algorithm 2 (line 6) uses rho' as the x_0 estimate; we follow
Algorithm 2 and eq. 14 (x_0 target), which is the consistent choice.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .config import DiffusionConfig
from .geometry import (
    canonical_basis_change,
    canonical_parameters,
    lattice_parameters,
    lattice_to_vector,
    min_image,
    vector_to_lattice,
    wrap,
)


class Schedule:
    """Linear beta schedules; index t = 0..T, ``abar[0] = 1``. Tensors are float64 on CPU."""

    def __init__(self, config: DiffusionConfig | None = None):
        c = config or DiffusionConfig()
        self.steps = c.steps
        zero = torch.zeros(1, dtype=torch.float64)
        self.beta_x = torch.cat([zero, torch.linspace(*c.beta_x, c.steps, dtype=torch.float64)])
        self.beta_rho = torch.cat([zero, torch.linspace(*c.beta_rho, c.steps, dtype=torch.float64)])
        self.abar_x = torch.cumprod(1 - self.beta_x, 0)
        self.abar_rho = torch.cumprod(1 - self.beta_rho, 0)
        self.lattice_preconditioning = c.lattice_preconditioning
        self.lattice_sigma_data = float(c.lattice_sigma_data)
        self.position_preconditioning = c.position_preconditioning

    def var_x(self, t: torch.Tensor) -> torch.Tensor:
        """Variance 1 - abar^x_t of q(x_t | x_0) (fractional units squared)."""
        return 1 - self.abar_x[t.cpu()]

    def position_scale(self, t: torch.Tensor) -> torch.Tensor | None:
        """sigma^x_t = sqrt(1 - abar^x_t) (B,) on t's device (fractional units), or None without
        position preconditioning: the network scales its displacement by it and eq. 20 is
        divided by its square (eq. 19's weight), so the target has unit scale at every t."""
        if not self.position_preconditioning:
            return None
        return self.var_x(t).sqrt().to(t.device)

    def lattice_scale(self, t: torch.Tensor) -> torch.Tensor | None:
        """c_out(t) (B,) on t's device, or None without preconditioning.

        sigma_t = sqrt(1 - abar^rho_t) is the std of the lattice noise at t and
        c_out = sigma_t / sqrt(sigma_t^2 + sigma_d^2) (EDM-style, sigma_d = ``lattice_sigma_data``):
        ~1 once the cell is noised (x_0 prediction), -> 0 as t -> 0, where the denoiser can only
        return (nearly) the identity. The network scales its lattice output by it (see
        ``GemsDiffNet.forward``) and the loss is divided by it, so the raw output and its
        gradients keep unit scale at every t."""
        if not self.lattice_preconditioning:
            return None
        sigma = (1 - self.abar_rho[t.cpu()]).sqrt()
        return (sigma / (sigma ** 2 + self.lattice_sigma_data ** 2).sqrt()).to(t.device)


@dataclass
class LatticeScaler:
    """Standardises lattice parameters (a, b, c in Å; angles in rad) with training statistics."""

    mean: torch.Tensor   # (6,)
    std: torch.Tensor    # (6,)

    @classmethod
    def fit(cls, lattices: torch.Tensor) -> LatticeScaler:
        p = canonical_parameters(lattices.to(torch.float64))
        std = p.std(0) if len(p) > 1 else torch.ones(6, dtype=torch.float64)
        return cls(mean=p.mean(0), std=std.clamp_min(1e-2))

    def __call__(self, lattice: torch.Tensor) -> torch.Tensor:
        p = canonical_parameters(lattice)
        return (p - self.mean.to(p)) / self.std.to(p)

    def state_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_state_dict(cls, d: dict) -> LatticeScaler:
        return cls(torch.tensor(d["mean"], dtype=torch.float64), torch.tensor(d["std"], dtype=torch.float64))


def corrupt(schedule: Schedule, lattice0, frac0, batch, t, generator=None):
    """Sample M_t ~ q(M_t | M_0) for each structure (Algorithm 1, lines 3-4).

    Args: lattice0 (B,3,3) Å rows, det > 0; frac0 (N,3); batch (N,); t (B,) long in 1..T.
    Returns: (lattice_t (B,3,3), frac_t (N,3)).
    """
    dev, dtype = lattice0.device, lattice0.dtype
    tc = t.cpu()
    v0 = lattice_to_vector(lattice0.to(torch.float64))
    ab = schedule.abar_rho[tc].to(dev)[:, None]
    eps = torch.randn(v0.shape, generator=generator, dtype=torch.float64, device=dev)
    lattice_t = vector_to_lattice(ab.sqrt() * v0 + (1 - ab).sqrt() * eps).to(dtype)
    std_x = schedule.var_x(tc).sqrt().to(dev, dtype)[batch][:, None]
    noise = torch.randn(frac0.shape, generator=generator, dtype=dtype, device=dev)
    return lattice_t, wrap(frac0 + std_x * noise)


def predicted_lattice(out: dict, lattice_t):
    """The network's x_0 estimate of the cell (B,3,3) Å rows, for every lattice head.

    x_0 heads return it directly (``out["lattice"]``). The ``coords`` head predicts the 6 shape
    + volume coordinates S_0 (rotation invariant) of the clean cell in the basis of the input cell;
    the rotation coordinates of v_t are kept (the orientation of the cell is irrelevant)."""
    if "lattice" in out:
        return out["lattice"]
    v_t = lattice_to_vector(lattice_t.to(torch.float64))
    s0 = out["lattice_coords"].to(torch.float64)
    return vector_to_lattice(torch.cat([v_t[:, :3], s0], -1))


def position_loss(disp_pred, frac0, frac_t, scale=None):
    """Eq. 20: mean over atoms of ||min_image(x_0 - x_t) - y^x||^2 (fractional units), divided
    by scale^2 per atom (N,) when given (eq. 19's 1 / sigma_t^2 weight)."""
    err = ((min_image(frac0 - frac_t) - disp_pred) ** 2).sum(-1)
    return (err if scale is None else err / scale ** 2).mean()


@lru_cache(maxsize=4)
def _small_unimodular(device: str, dtype: torch.dtype) -> torch.Tensor:
    """The 3480 integer matrices with entries in {-1, 0, 1} and det = +1, (M, 3, 3)."""
    m = torch.tensor(list(itertools.product([-1, 0, 1], repeat=9)), dtype=torch.float64)
    m = m.reshape(-1, 3, 3)
    return m[torch.linalg.det(m).round() == 1].to(device=device, dtype=dtype)


def lattice_loss(lattice_pred, lattice0, scaler: LatticeScaler, reduce: bool = True):
    """Eq. 15, d(rho, rho') = ||p(rho) - p(rho')|| on standardised lattice parameters, made
    independent of rotation *and* of the basis: the prediction's canonical basis is compared
    with the target's through the best of the small unimodular changes g (entries in {-1,0,1}),
    which absorbs the ties of lattice reduction (e.g. fcc: 60 vs 120 degree bases). Mean over
    cells, or per cell (B,) with ``reduce=False``.
    """
    target = scaler(lattice0.to(lattice_pred.dtype))                      # (B, 6)
    red = canonical_basis_change(lattice_pred).to(lattice_pred.dtype) @ lattice_pred
    g = _small_unimodular(str(red.device), red.dtype)                      # (M, 3, 3)
    mean, std = scaler.mean.to(red), scaler.std.to(red)
    with torch.no_grad():
        cand = (lattice_parameters(g[None] @ red[:, None]) - mean) / std   # (B, M, 6)
        best = ((cand - target[:, None]) ** 2).sum(-1).argmin(1)            # (B,)
    chosen = (lattice_parameters(g[best] @ red) - mean) / std
    dist = torch.sqrt(((chosen - target) ** 2).sum(-1) + 1e-8)
    return dist.mean() if reduce else dist


def training_losses(model, schedule: Schedule, scaler: LatticeScaler, data, generator=None):
    """One draw of Algorithm 1: returns dict(loss, loss_x, loss_rho) (0-d tensors).

    ``loss`` (optimised) = loss_x + the lattice term weighted by 1 / c_out(t) when the lattice
    head is preconditioned; ``loss_rho`` is the unweighted eq. 15 distance (comparable over t)."""
    b = data.lattice.shape[0]
    t = torch.randint(1, schedule.steps + 1, (b,), generator=generator,
                      device=data.lattice.device if generator is None else generator.device)
    t = t.to(data.lattice.device)
    lattice_t, frac_t = corrupt(schedule, data.lattice, data.frac, data.batch, t, generator)
    scale, scale_x = schedule.lattice_scale(t), schedule.position_scale(t)
    out = model(lattice_t, frac_t, data.z, t, data.batch, data.n_atoms, lattice_scale=scale,
                position_scale=scale_x)
    dtype = out["disp"].dtype
    loss_x = position_loss(out["disp"], data.frac.to(dtype), frac_t.to(dtype),
                           None if scale_x is None else scale_x.to(dtype)[data.batch])
    if "lattice_coords" in out:
        # coords head: x_0 regression of the 6 shape + volume coordinates of the clean cell (in
        # the data's canonical basis, which the noised cell keeps: v_t is not re-reduced)
        with torch.no_grad():
            loss_rho = lattice_loss(predicted_lattice(out, lattice_t),
                                    data.lattice, scaler)
        pred = out["lattice_coords"]
        target = lattice_to_vector(data.lattice.to(torch.float64))[:, 3:].to(pred)
        loss_coords = ((pred - target) ** 2).sum(-1).mean()
        return {"loss": loss_x + loss_coords, "loss_x": loss_x, "loss_rho": loss_rho}
    dist = lattice_loss(out["lattice"], data.lattice, scaler, reduce=False)
    loss_rho = dist.mean()
    # objective: eq. 15 divided by c_out(t) (preconditioning); loss_rho reports plain eq. 15
    objective_rho = loss_rho if scale is None else (dist / scale.to(dist)).mean()
    return {"loss": loss_x + objective_rho, "loss_x": loss_x, "loss_rho": loss_rho}


def posterior_lattice(schedule: Schedule, v_t, v0_hat, t: int, s: int, generator=None):
    """Lattice step t -> s < t of the (respaced) DDPM posterior q(v_s | v_t, v_0 = v0_hat)."""
    ab_t, ab_s = float(schedule.abar_rho[t]), float(schedule.abar_rho[s])
    a_ts = ab_t / ab_s
    b_ts = 1 - a_ts
    mean = (math.sqrt(ab_s) * b_ts / (1 - ab_t)) * v0_hat \
        + (math.sqrt(a_ts) * (1 - ab_s) / (1 - ab_t)) * v_t
    var = (1 - ab_s) / (1 - ab_t) * b_ts
    if s == 0:
        return mean
    eps = torch.randn(v_t.shape, generator=generator, dtype=v_t.dtype, device=v_t.device)
    return mean + math.sqrt(var) * eps


def posterior_positions(schedule: Schedule, x_t, x0_hat, t: int, s: int, generator=None):
    """Torus step t -> s < t: wrapped VE posterior around the nearest image of x0_hat.

    mean = x0 + (v_s / v_t) d, var = v_s (v_t - v_s) / v_t, d = min_image(x_t - x0), v = 1 - abar^x.
    (Algorithm 2 line 5 is the special case that drops the d term.)
    """
    v_t, v_s = 1 - float(schedule.abar_x[t]), 1 - float(schedule.abar_x[s])
    if s == 0:
        return wrap(x0_hat)
    mean = x0_hat + (v_s / v_t) * min_image(x_t - x0_hat)
    eps = torch.randn(x_t.shape, generator=generator, dtype=x_t.dtype, device=x_t.device)
    return wrap(mean + math.sqrt(v_s * (v_t - v_s) / v_t) * eps)
