"""Forward (corruption) processes and the training objective; no network, no sampler.

One noise level tau in [0, 1] per structure drives both processes (tau = 1: the prior).

Positions live on the torus T^3 = R^3 / Z^3 (paper eq. 16): q(x_tau | x_0) is the wrapped normal
[N(x_0, sigma(tau)^2 I)]_T with a geometric sigma(tau) = sigma_min^(1 - tau) sigma_max^tau
(0.005 -> 0.5, DiffCSP's schedule): at sigma = 0.5 the wrapped normal is uniform to within 1e-2
(its first Fourier coefficient is exp(-2 pi^2 sigma^2) = 0.007), so the prior U(0, 1)^3 is what
the forward process reaches. The network is trained on the score of the wrapped normal
(eq. 18's KL reduces to it), normalised to unit variance per coordinate,
    target = -sigma * grad log q(x_tau | x_0) / c(sigma),  c(sigma)^2 = E[(sigma grad log q)^2],
which is the noise eps for small sigma and stays well scaled when the images overlap; the
common translation of the atoms is removed from the target (a translation-invariant network
cannot predict it).

The lattice lives in the 6 standardised metric coordinates of ``lattice.LatticeStandardizer``
(paper eqs. 12-13 without the 3 rotation coordinates): variance-preserving DDPM
s_tau = sqrt(abar(tau)) s_0 + sqrt(1 - abar(tau)) eps with the cosine abar of Nichol & Dhariwal,
prior N(0, I), epsilon target (eq. 14 up to its weight).
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from .config import DiffusionConfig
from .geometry import min_image, wrap
from .lattice import LatticeStandardizer

#: images of the wrapped normal summed in scores (|k| <= 3: exact to 1e-15 for sigma <= 0.5)
_N_IMAGES = 3
#: smallest abar of the lattice schedule (tau = 1), keeps 1 / sqrt(abar) finite
ALPHA_BAR_MIN = 1e-4


def wrapped_normal_score(d: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """d/dd log sum_k N(d + k; 0, sigma^2) for displacements d (any shape) and sigma
    broadcastable to d (fractional units)."""
    k = torch.arange(-_N_IMAGES, _N_IMAGES + 1, device=d.device, dtype=d.dtype)
    x = min_image(d)[..., None] + k
    s = torch.as_tensor(sigma, dtype=d.dtype, device=d.device)[..., None]
    w = torch.softmax(-x * x / (2 * s * s), dim=-1)
    return -(w * x).sum(-1) / (s[..., 0] ** 2)


def _score_scale_exact(sigma: torch.Tensor, n_grid: int = 2048) -> torch.Tensor:
    """c(sigma) = sqrt(E[(sigma * score)^2]) under the wrapped normal, by quadrature on a
    periodic grid of [-1/2, 1/2) (float64)."""
    d = torch.arange(n_grid, dtype=torch.float64) / n_grid - 0.5
    k = torch.arange(-_N_IMAGES, _N_IMAGES + 1, dtype=torch.float64)
    x = d[None, :, None] + k                                                # (1, G, K)
    s = sigma.to(torch.float64)[:, None, None]
    dens = torch.exp(-x * x / (2 * s * s)).sum(-1) / (s[..., 0] * math.sqrt(2 * math.pi))
    score = wrapped_normal_score(d[None, :], sigma.to(torch.float64)[:, None])
    return ((dens * (s[..., 0] * score) ** 2).mean(1)).sqrt()


@lru_cache(maxsize=8)
def _score_scale_table(sigma_min: float, sigma_max: float):
    """(log sigma grid (257,), c(sigma) on it): one quadrature, then linear interpolation
    (relative error < 3e-3)."""
    grid = torch.linspace(math.log(sigma_min), math.log(sigma_max), 257, dtype=torch.float64)
    return grid, _score_scale_exact(grid.exp())


class NoiseSchedule:
    """sigma(tau) of the positions, abar(tau) of the lattice, and c(sigma) (float64)."""

    def __init__(self, config: DiffusionConfig | None = None):
        c = self.config = config or DiffusionConfig()
        self.sigma_min, self.sigma_max = float(c.sigma_min), float(c.sigma_max)
        self.offset = float(c.cosine_offset)
        self._log_grid, self._scale = _score_scale_table(self.sigma_min, self.sigma_max)

    def sigma(self, tau: torch.Tensor) -> torch.Tensor:
        """Position noise std (fractional units) at tau, same shape, float64."""
        tau = tau.to(torch.float64)
        return self.sigma_min ** (1 - tau) * self.sigma_max ** tau

    def alpha_bar(self, tau: torch.Tensor) -> torch.Tensor:
        """Cosine abar(tau) of the lattice coordinates, in [ALPHA_BAR_MIN, 1], float64."""
        tau = tau.to(torch.float64)
        f = torch.cos((tau + self.offset) / (1 + self.offset) * math.pi / 2) ** 2
        f0 = math.cos(self.offset / (1 + self.offset) * math.pi / 2) ** 2
        return (f / f0).clamp(ALPHA_BAR_MIN, 1.0)

    def score_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """c(sigma), interpolated in log sigma (sigma within [sigma_min, sigma_max])."""
        log = sigma.to(torch.float64).log().cpu().clamp(self._log_grid[0], self._log_grid[-1])
        pos = (log - self._log_grid[0]) / (self._log_grid[1] - self._log_grid[0])
        i = pos.floor().long().clamp(max=len(self._log_grid) - 2)
        w = pos - i
        out = (1 - w) * self._scale[i] + w * self._scale[i + 1]
        return out.to(sigma.device)

    def position_target(self, displacement: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Normalised noise target -sigma * score / c(sigma) of displacements x_tau - x_0 (N, 3)
        with sigma (N, 1) (before translation removal)."""
        score = wrapped_normal_score(displacement, sigma)
        return -sigma * score / self.score_scale(sigma)

    def position_score(self, eps: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Score estimate grad log q from the network's normalised noise (N, 3), sigma (N, 1)."""
        return -eps * self.score_scale(sigma) / sigma


def remove_translation(x: torch.Tensor, batch: torch.Tensor, n_atoms: torch.Tensor):
    """x (N, 3) minus its mean over the atoms of each structure."""
    mean = torch.zeros(len(n_atoms), 3, dtype=x.dtype, device=x.device).index_add(0, batch, x)
    return x - (mean / n_atoms.to(x.dtype)[:, None])[batch]


def corrupt(schedule: NoiseSchedule, frac0, coords0, tau, batch, n_atoms, generator=None):
    """Sample the noisy state at tau (B,) (Algorithm 1, lines 3-4) and the training targets.

    frac0 (N, 3) fractional, coords0 (B, 6) standardised lattice coordinates (float64).
    Returns frac_t (N, 3), coords_t (B, 6), target_x (N, 3) (normalised, translation-free),
    eps_lattice (B, 6)."""
    dev = frac0.device
    sigma = schedule.sigma(tau).to(dev)[batch, None]                          # (N, 1) float64
    noise = torch.randn(frac0.shape, generator=generator, dtype=torch.float64, device=dev)
    frac_t = wrap(frac0.to(torch.float64) + sigma * noise)
    target_x = remove_translation(schedule.position_target(sigma * noise, sigma), batch, n_atoms)
    ab = schedule.alpha_bar(tau).to(dev)[:, None]
    eps_lattice = torch.randn(coords0.shape, generator=generator, dtype=torch.float64, device=dev)
    coords_t = ab.sqrt() * coords0 + (1 - ab).sqrt() * eps_lattice
    return frac_t, coords_t, target_x, eps_lattice


def training_losses(model, schedule: NoiseSchedule, standardizer: LatticeStandardizer, data,
                    generator=None, tau=None) -> dict:
    """One draw of Algorithm 1 for a ``data.CrystalBatch``: dict of 0-d tensors ``loss``
    (optimised: loss_x + lattice_weight * loss_lattice), ``loss_x`` and ``loss_lattice`` (mean
    squared error per coordinate of the normalised noise; 1 for a network that outputs 0).
    ``tau`` (B,) fixes the noise levels (default U(0, 1))."""
    n = data.n_atoms
    if tau is None:
        dev = data.lattice.device if generator is None else generator.device
        tau = torch.rand(len(n), generator=generator, dtype=torch.float64, device=dev)
    tau = tau.to(data.lattice.device)
    coords0 = standardizer.encode(data.lattice, n)
    frac_t, coords_t, target_x, eps_lattice = corrupt(schedule, data.frac, coords0, tau,
                                                      data.batch, n, generator)
    dtype = next(model.parameters()).dtype
    lattice_t = standardizer.decode(coords_t, n).to(dtype)
    eps_x, eps_l = model(frac_t.to(dtype), coords_t.to(dtype), lattice_t, data.z, tau,
                         data.batch, n)
    loss_x = ((eps_x - target_x.to(dtype)) ** 2).mean()
    loss_lattice = ((eps_l - eps_lattice.to(dtype)) ** 2).mean()
    weight = schedule.config.lattice_weight
    return {"loss": loss_x + weight * loss_lattice, "loss_x": loss_x, "loss_lattice": loss_lattice}
