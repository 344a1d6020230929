import math

import torch

from gemsdiff_model import geometry as g
from gemsdiff_model.diffusion import LatticeScaler, Schedule, corrupt, lattice_loss, position_loss


def test_schedules_match_table_1():
    s = Schedule()
    assert s.steps == 100
    assert math.isclose(s.beta_x[1], 1e-6) and math.isclose(s.beta_x[100], 2e-3)
    assert math.isclose(s.beta_rho[1], 1e-5) and math.isclose(s.beta_rho[100], 1e-1)
    assert s.abar_rho[100] < 0.01     # lattice prior ~ N(0, I)


def test_torus_marginal_variance_matches_closed_form():
    s = Schedule()
    n = 40000
    frac0 = torch.full((n, 3), 0.3, dtype=torch.float64)
    lat = torch.eye(3, dtype=torch.float64)[None].repeat(1, 1, 1) * 4
    batch = torch.zeros(n, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    for t in (1, 30, 100):
        _, xt = corrupt(s, lat, frac0, batch, torch.tensor([t]), gen)
        d = g.min_image(xt - frac0)
        var = float(1 - s.abar_x[t])          # closed form of q(x_t | x_0) (eq. 16)
        # variance of the shortest displacement under the wrapped normal [N(0, var)]_T
        grid = torch.linspace(-0.5, 0.5, 20001, dtype=torch.float64)
        dens = g.wrapped_normal_logpdf(grid, torch.tensor(0.0, dtype=torch.float64), var ** 0.5).exp()
        expected = float(torch.trapezoid(grid ** 2 * dens, grid))
        if t < 100:
            assert abs(expected / var - 1) < 1e-3   # wrapping negligible at small t
        assert abs(float(d.var()) / expected - 1) < 0.03


def test_wrapped_normal_tends_to_uniform():
    gen = torch.Generator().manual_seed(1)
    x = g.wrapped_normal_sample(torch.full((200000,), 0.1, dtype=torch.float64), 3.0, gen)
    hist = torch.histc(x, bins=10, min=0, max=1) / len(x)
    assert (hist - 0.1).abs().max() < 0.005
    # density integrates to 1 and is ~flat for a large std
    grid = torch.linspace(0, 1, 2001, dtype=torch.float64)[:-1]
    dens = g.wrapped_normal_logpdf(grid, torch.tensor(0.1, dtype=torch.float64), 3.0).exp()
    assert abs(float(dens.mean()) - 1) < 1e-6 and float((dens - 1).abs().max()) < 1e-6


def test_lattice_marginal_closed_form():
    s = Schedule()
    lat0 = torch.diag(torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64))[None].repeat(20000, 1, 1)
    gen = torch.Generator().manual_seed(2)
    t = torch.full((20000,), 40)
    lt, _ = corrupt(s, lat0, torch.zeros(20000, 3, dtype=torch.float64), torch.arange(20000), t, gen)
    v0, vt = g.lattice_to_vector(lat0[:1]), g.lattice_to_vector(lt)
    ab = float(s.abar_rho[40])
    assert torch.allclose(vt.mean(0), math.sqrt(ab) * v0[0], atol=0.03)
    assert torch.allclose(vt[:, 3:].var(0), torch.full((6,), 1 - ab, dtype=torch.float64), rtol=0.05)


def test_position_loss_minimal_at_truth_and_image_invariant():
    gen = torch.Generator().manual_seed(3)
    x0 = torch.rand(50, 3, generator=gen, dtype=torch.float64)
    xt = g.wrap(x0 + 0.2 * torch.randn(50, 3, generator=gen, dtype=torch.float64))
    truth = g.min_image(x0 - xt)
    assert position_loss(truth, x0, xt) == 0
    assert position_loss(truth + 0.01, x0, xt) > 0
    k = torch.randint(-3, 4, (50, 3), generator=gen).to(torch.float64)
    other = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 0.1
    assert torch.allclose(position_loss(other, x0 + k, xt), position_loss(other, x0, xt))
    assert torch.allclose(position_loss(other, x0, xt - k), position_loss(other, x0, xt))


def test_lattice_loss_minimal_at_truth_rotation_and_basis_invariant():
    gen = torch.Generator().manual_seed(4)
    lat0 = torch.randn(8, 3, 3, generator=gen, dtype=torch.float64) + 4 * torch.eye(3, dtype=torch.float64)
    scaler = LatticeScaler.fit(lat0)
    assert lattice_loss(lat0, lat0, scaler) < 1e-3
    rot = g.so3_exp(torch.tensor([0.4, 0.1, -2.0], dtype=torch.float64))
    assert lattice_loss(lat0 @ rot.T, lat0, scaler) < 1e-3
    u = torch.tensor([[1.0, 1, 0], [0, 1, 0], [0, 1, 1]], dtype=torch.float64)
    assert lattice_loss(u @ lat0, lat0, scaler) < 1e-3
    assert lattice_loss(lat0 * 1.1, lat0, scaler) > 0.1


def test_lattice_preconditioning_scale_and_legacy_configs():
    from gemsdiff_model.config import Config, DiffusionConfig

    s = Schedule()
    c = s.lattice_scale(torch.tensor([1, 10, 100]))
    assert c[0] < 0.05 and 0.85 < c[1] < 0.95 and c[2] > 0.99     # c_out -> 0 as t -> 0
    assert Schedule(DiffusionConfig(lattice_preconditioning=False)).lattice_scale(torch.tensor([5])) is None
    # a config saved before the options existed keeps the old behaviour; a new one round-trips
    old = Config.from_dict({"model": {"hidden": 16}, "diffusion": {"steps": 100}, "train": {}})
    assert old.model.lattice_head == "edge" and old.diffusion.lattice_preconditioning is False
    new = Config.from_dict(Config().to_dict())
    assert new.model.lattice_head == "coords" and new.diffusion.lattice_preconditioning is True
