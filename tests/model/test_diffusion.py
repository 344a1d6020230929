import math

import pytest
import torch

from gemsdiff_model.config import DiffusionConfig
from gemsdiff_model.data import collate, load_records
from gemsdiff_model.diffusion import (
    ALPHA_BAR_MIN,
    NoiseSchedule,
    corrupt,
    remove_translation,
    wrapped_normal_score,
)
from gemsdiff_model.lattice import LatticeStandardizer

F64 = torch.float64


def wrapped_logpdf(d, sigma, images=10):
    k = torch.arange(-images, images + 1, dtype=F64)
    x = d[..., None] + k
    return torch.logsumexp(-x ** 2 / (2 * sigma ** 2), -1) - math.log(sigma * math.sqrt(2 * math.pi))


@pytest.mark.parametrize("sigma", [0.005, 0.05, 0.3, 0.5])
def test_wrapped_normal_score_is_the_gradient_of_the_log_density(sigma):
    d = torch.linspace(-0.49, 0.49, 41, dtype=F64).requires_grad_(True)
    wrapped_logpdf(d, sigma).sum().backward()
    torch.testing.assert_close(wrapped_normal_score(d.detach(), sigma), d.grad, rtol=1e-9,
                               atol=1e-9)
    # periodic: a whole-cell shift does not change it
    torch.testing.assert_close(wrapped_normal_score(d.detach() + 3, sigma),
                               wrapped_normal_score(d.detach(), sigma))


def test_score_scale_is_one_for_small_sigma_and_matches_monte_carlo():
    s = NoiseSchedule()
    assert float(s.score_scale(torch.tensor([0.005], dtype=F64))) == pytest.approx(1.0, abs=1e-9)
    gen = torch.Generator().manual_seed(0)
    for sigma in (0.2, 0.35, 0.5):
        d = sigma * torch.randn(400_000, generator=gen, dtype=F64)
        mc = (sigma * wrapped_normal_score(d, sigma)).pow(2).mean().sqrt()
        table = s.score_scale(torch.tensor([sigma], dtype=F64))
        assert float(table) == pytest.approx(float(mc), rel=0.01)


def test_schedules_end_points():
    s = NoiseSchedule(DiffusionConfig(sigma_min=0.005, sigma_max=0.5))
    tau = torch.tensor([0.0, 0.5, 1.0], dtype=F64)
    torch.testing.assert_close(s.sigma(tau), torch.tensor([0.005, 0.05, 0.5], dtype=F64))
    ab = s.alpha_bar(tau)
    assert float(ab[0]) == 1.0 and float(ab[2]) == ALPHA_BAR_MIN
    assert 0.45 < float(ab[1]) < 0.55                     # cosine: about half-way at tau = 1/2
    # the prior of the positions is what the forward process reaches: the first Fourier
    # coefficient of the wrapped normal at sigma_max is exp(-2 pi^2 sigma^2) < 0.01
    assert math.exp(-2 * math.pi ** 2 * 0.5 ** 2) < 0.01


def test_remove_translation_by_hand():
    x = torch.tensor([[1.0, 0, 0], [3.0, 0, 0], [5.0, 1, 1]], dtype=F64)
    batch, n = torch.tensor([0, 0, 1]), torch.tensor([2, 1])
    torch.testing.assert_close(remove_translation(x, batch, n),
                               torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 0]], dtype=F64))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from pathlib import Path
    records, _ = load_records(Path(__file__).parent / "data", 20)
    return collate(records)


def test_corrupt_targets(batch):
    s = NoiseSchedule()
    std = LatticeStandardizer.fit(batch.lattice, batch.n_atoms)
    coords0 = std.encode(batch.lattice, batch.n_atoms)
    b = len(batch.n_atoms)
    # tau = 0: sigma 0.005, the normalised target is the translation-free noise itself
    gen = torch.Generator().manual_seed(1)
    tau = torch.zeros(b, dtype=F64)
    frac_t, coords_t, target, eps_l = corrupt(s, batch.frac, coords0, tau, batch.batch,
                                              batch.n_atoms, gen)
    noise = (frac_t - batch.frac + 0.5) % 1 - 0.5
    torch.testing.assert_close(target, remove_translation(noise / 0.005, batch.batch,
                                                          batch.n_atoms), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(coords_t, coords0)          # abar(0) = 1: clean lattice
    assert ((frac_t >= 0) & (frac_t < 1)).all()
    # tau = 1: the lattice coordinates are (almost) pure noise
    tau = torch.ones(b, dtype=F64)
    _, coords_t, target, eps_l = corrupt(s, batch.frac, coords0, tau, batch.batch,
                                         batch.n_atoms, gen)
    torch.testing.assert_close(coords_t, ALPHA_BAR_MIN ** 0.5 * coords0
                               + (1 - ALPHA_BAR_MIN) ** 0.5 * eps_l)
    mean = torch.zeros(b, 3, dtype=F64).index_add(0, batch.batch, target)
    assert mean.abs().max() < 1e-12                           # translation removed


def test_lattice_standardizer_round_trip_and_per_atom_volume(batch):
    std = LatticeStandardizer.fit(batch.lattice, batch.n_atoms)
    coords = std.encode(batch.lattice, batch.n_atoms)
    torch.testing.assert_close(coords.mean(0), torch.zeros(6, dtype=F64), atol=1e-12, rtol=0)
    back = std.decode(coords, batch.n_atoms)
    torch.testing.assert_close(back @ back.mT, batch.lattice @ batch.lattice.mT)
    # a 2x supercell along a has the same per-atom coordinates except the shape
    double = batch.lattice.clone()
    double[:, 0] *= 2
    c2 = std.encode(double, batch.n_atoms * 2)
    torch.testing.assert_close(c2[:, 5], coords[:, 5])
    saved = LatticeStandardizer.from_state_dict(std.state_dict())
    torch.testing.assert_close(saved.encode(batch.lattice, batch.n_atoms), coords)
