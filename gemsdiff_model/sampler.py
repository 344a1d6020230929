"""Reverse process (Algorithm 2 with a Langevin corrector): compositions in, crystals out.

The chain runs on the noise levels tau_k = k / steps, k = steps .. 0, from the prior (uniform
positions, standard-normal lattice coordinates). Each step is a predictor-corrector step
(Song et al. 2021, as DiffCSP):

* corrector (positions, optional): one Langevin step at tau_k,
  x <- x + g score + sqrt(2 g) z with g = step_lr (sigma_k / sigma_min)^2;
* predictor, positions: ancestral step of the variance-exploding wrapped normal,
  x <- x + (sigma_k^2 - sigma_{k-1}^2) score + sqrt(sigma_{k-1}^2 (sigma_k^2 - sigma_{k-1}^2)
  / sigma_k^2) z, with sigma_0 = 0 at the last step (the estimate of the clean positions);
* predictor, lattice: DDPM posterior q(s_{k-1} | s_k, s_0 = s0_hat) with
  s0_hat = (s_k - sqrt(1 - abar_k) eps) / sqrt(abar_k) (clipped to +-CLIP), noise-free at the end.
"""
from __future__ import annotations

import itertools

import torch

from .diffusion import NoiseSchedule
from .errors import GemsDiffError
from .geometry import to_canonical_basis, wrap
from .lattice import LatticeStandardizer

#: standardised lattice coordinates of s0_hat are clipped to this range (data: |s| < 6)
CLIP = 8.0


def check_sampler(steps: int, restarts: int, restart_tau: float) -> None:
    """Clear errors for sampler settings out of range."""
    if steps < 1:
        raise GemsDiffError(f"--steps must be at least 1, got {steps}")
    if restarts < 0:
        raise GemsDiffError(f"--restarts must be 0 or more, got {restarts}")
    if not 0 < restart_tau <= 1:
        raise GemsDiffError(f"--restart-tau must be in (0, 1], got {restart_tau}")


class Chain:
    """The reverse chain of one batch of compositions (atoms z (N,), batch (N,), n_atoms (B,))."""

    def __init__(self, model, schedule: NoiseSchedule, standardizer: LatticeStandardizer,
                 z, batch, n_atoms, step_lr: float, generator=None, on_step=None):
        self.model, self.schedule, self.standardizer = model, schedule, standardizer
        self.z, self.batch, self.n_atoms = z, batch, n_atoms
        self.step_lr, self.generator, self.on_step = step_lr, generator, on_step
        self.dtype = next(model.parameters()).dtype

    def noise(self, shape):
        """Standard normal (float64) of ``shape`` from the chain's generator."""
        return torch.randn(shape, generator=self.generator, dtype=torch.float64,
                           device=self.z.device)

    def _predict(self, x, coords, tau: float):
        """Network at noise level tau: (score of the positions (N, 3), eps of the lattice (B, 6),
        sigma (N, 1)), float64."""
        b = len(self.n_atoms)
        taus = torch.full((b,), tau, dtype=torch.float64, device=x.device)
        lattice = self.standardizer.decode(coords, self.n_atoms).to(self.dtype)
        eps_x, eps_l = self.model(x.to(self.dtype), coords.to(self.dtype), lattice, self.z, taus,
                                  self.batch, self.n_atoms)
        sigma = self.schedule.sigma(taus)[self.batch, None]
        score = self.schedule.position_score(eps_x.to(torch.float64), sigma)
        return score, eps_l.to(torch.float64), sigma

    @torch.no_grad()
    def run(self, x, coords, levels: list[float]):
        """Denoise positions x (N, 3) and lattice coordinates (B, 6) (float64) along the
        decreasing noise levels ``levels`` (ending at 0)."""
        sched = self.schedule
        for tau, tau_next in itertools.pairwise(levels):
            if self.step_lr > 0:
                score, _, sigma = self._predict(x, coords, tau)
                g = self.step_lr * (sigma / sched.sigma_min) ** 2
                x = wrap(x + g * score + (2 * g).sqrt() * self.noise(x.shape))
            score, eps_l, sigma = self._predict(x, coords, tau)
            last = tau_next <= 0
            sigma_next = torch.zeros_like(sigma) if last else \
                sched.sigma(torch.tensor(tau_next, dtype=torch.float64))
            var = sigma ** 2 - sigma_next ** 2
            x = x + var * score
            if not last:
                x = x + (sigma_next ** 2 * var / sigma ** 2).sqrt() * self.noise(x.shape)
            x = wrap(x)
            coords = self._lattice_step(coords, eps_l, tau, tau_next)
            if self.on_step is not None:
                self.on_step(tau_next, self.standardizer.decode(coords, self.n_atoms), x)
        return x, coords

    def _lattice_step(self, coords, eps, tau: float, tau_next: float):
        ab_t = float(self.schedule.alpha_bar(torch.tensor(tau)))
        s0 = ((coords - (1 - ab_t) ** 0.5 * eps) / ab_t ** 0.5).clamp(-CLIP, CLIP)
        if tau_next <= 0:
            return s0
        ab_s = float(self.schedule.alpha_bar(torch.tensor(tau_next)))
        a_ts = ab_t / ab_s
        mean = (ab_s ** 0.5 * (1 - a_ts) / (1 - ab_t)) * s0 \
            + (a_ts ** 0.5 * (1 - ab_s) / (1 - ab_t)) * coords
        std = ((1 - ab_s) / (1 - ab_t) * (1 - a_ts)) ** 0.5
        return mean + std * self.noise(coords.shape)

    def forward_noise(self, x, coords, tau: float):
        """Diffuse a (clean) state forward to tau with the training corruption."""
        tt = torch.tensor(tau, dtype=torch.float64)
        sigma, ab = float(self.schedule.sigma(tt)), float(self.schedule.alpha_bar(tt))
        x = wrap(x + sigma * self.noise(x.shape))
        coords = ab ** 0.5 * coords + (1 - ab) ** 0.5 * self.noise(coords.shape)
        return x, coords


def noise_levels(steps: int, start: float = 1.0) -> list[float]:
    """Decreasing levels start = tau_K > ... > tau_0 = 0 spaced 1 / steps (K = round(start
    steps), at least 1)."""
    k = max(1, round(start * steps))
    return [i / steps * (start * steps / k) for i in range(k, -1, -1)]


@torch.no_grad()
def generate(model, schedule: NoiseSchedule, standardizer: LatticeStandardizer,
             numbers: list[list[int]], steps: int = 500, step_lr: float = 1e-5,
             generator: torch.Generator | None = None, device="cpu", on_step=None,
             restarts: int = 0, restart_tau: float = 0.1):
    """Sample one crystal per atomic-number list, as one batch.

    ``steps`` predictor steps, each preceded by a Langevin corrector step when ``step_lr`` > 0.
    ``restarts`` rounds of restart sampling (Xu et al., NeurIPS 2023) follow the chain: the
    sample is diffused forward to ``restart_tau`` and denoised back to 0 at the same spacing.
    ``on_step(tau, lattice (B,3,3) Å, frac (N,3))`` sees the state after every predictor step.
    Returns (lattices (B,3,3) float64 Å rows in the canonical basis, list of (n_i,3)
    fractional coordinates)."""
    check_sampler(steps, restarts, restart_tau)
    device = torch.device(device)
    n_atoms = torch.tensor([len(zs) for zs in numbers], device=device)
    z = torch.tensor([a for zs in numbers for a in zs], device=device)
    batch = torch.repeat_interleave(torch.arange(len(numbers), device=device), n_atoms)
    chain = Chain(model, schedule, standardizer, z, batch, n_atoms, step_lr, generator, on_step)
    x = torch.rand((len(z), 3), generator=generator, dtype=torch.float64, device=device)
    coords = chain.noise((len(numbers), 6))
    x, coords = chain.run(x, coords, noise_levels(steps))
    for _ in range(restarts):
        x, coords = chain.forward_noise(x, coords, restart_tau)
        x, coords = chain.run(x, coords, noise_levels(steps, restart_tau))
    lattice, x = to_canonical_basis(standardizer.decode(coords, n_atoms), x, batch)
    return lattice.cpu(), list(torch.split(x.cpu(), n_atoms.cpu().tolist()))
