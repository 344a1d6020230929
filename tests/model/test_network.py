import numpy as np
import pytest
import torch

from gemsdiff_model.config import ModelConfig
from gemsdiff_model.geometry import so3_exp
from gemsdiff_model.graph import knn_graph
from gemsdiff_model.network import GemsDiffNet

UNIMODULAR = torch.tensor([[1.0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=torch.float64) @ \
    torch.tensor([[1.0, 0, 0], [2, 1, 0], [1, -3, 1]], dtype=torch.float64)


def random_batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = torch.tensor([5, 3, 1])
    lat = torch.randn(3, 3, 3, generator=gen, dtype=torch.float64) + 4 * torch.eye(3, dtype=torch.float64)
    x = torch.rand(int(n.sum()), 3, generator=gen, dtype=torch.float64)
    z = torch.randint(1, 90, (int(n.sum()),), generator=gen)
    batch = torch.repeat_interleave(torch.arange(3), n)
    return lat, x, z, torch.tensor([3, 50, 100]), batch, n


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GemsDiffNet(ModelConfig(hidden=16, enc_layers=1, dec_layers=1, knn=12, n_rbf=8,
                                   n_angle=4, lattice_head="lsq")).double().eval()


def test_knn_graph_matches_pymatgen():
    from pymatgen.core import Structure

    lat, x, _, _, batch, n = random_batch()
    graph = knn_graph(lat, x, batch, n, k=16)
    start = 0
    for b in range(3):
        s = Structure(lat[b].numpy(), ["Si"] * int(n[b]), x[start:start + n[b]].numpy())
        for i, neigh in enumerate(s.get_all_neighbors(12.0)):
            d = np.sort([nb.nn_distance for nb in neigh])[:17]
            np.testing.assert_allclose(graph.dist[start + i].numpy(), d[:16], atol=1e-9)
            assert graph.cutoff[start + i].item() == pytest.approx(d[16])
        start += int(n[b])


def test_knn_graph_skewed_cell_same_as_reduced():
    lat, x, _, _, batch, n = random_batch(1)
    skew = torch.tensor([[1.0, 5, 0], [0, 1, 0], [0, 4, 1]], dtype=torch.float64)
    g1 = knn_graph(lat, x, batch, n, 32)
    g2 = knn_graph(skew @ lat, x @ torch.linalg.inv(skew) % 1, batch, n, 32)
    assert torch.allclose(g1.dist, g2.dist, atol=1e-9)


def test_equivariance_rotation_translation_permutation_basis(model):
    lat, x, z, t, batch, n = random_batch(2)
    with torch.no_grad():
        out = model(lat, x, z, t, batch, n)
        rot = so3_exp(torch.tensor([0.3, -2.0, 1.1], dtype=torch.float64))
        o = model(lat @ rot.T, x, z, t, batch, n)                    # rotation
        assert torch.allclose(o["lattice"], out["lattice"] @ rot.T, atol=1e-9)
        assert torch.allclose(o["disp"], out["disp"], atol=1e-10)
        shift = torch.tensor([0.37, -0.2, 0.91], dtype=torch.float64)
        o = model(lat, (x + shift) % 1, z, t, batch, n)               # translation
        assert torch.allclose(o["lattice"], out["lattice"], atol=1e-9)
        assert torch.allclose(o["disp"], out["disp"], atol=1e-10)
        perm = torch.cat([torch.randperm(5), 5 + torch.randperm(3), torch.tensor([8])])
        o = model(lat, x[perm], z[perm], t, batch, n)                 # permutation
        assert torch.allclose(o["disp"], out["disp"][perm], atol=1e-10)
        assert torch.allclose(o["lattice"], out["lattice"], atol=1e-9)
        inv = torch.linalg.inv(UNIMODULAR)                            # SL3(Z): (L, x) -> (U L, x U^-1)
        o = model(UNIMODULAR @ lat, (x @ inv) % 1, z, t, batch, n)
        assert torch.allclose(o["lattice"], UNIMODULAR @ out["lattice"], atol=1e-8)
        assert torch.allclose(o["disp"], out["disp"] @ inv, atol=1e-9)


def test_tied_neighbours_do_not_change_output(model):
    # simple cubic, 1 atom: 6 nearest neighbours tie, k = 12 cuts through the 12 second ones
    lat = torch.eye(3, dtype=torch.float64)[None] * 3
    x = torch.zeros(1, 3, dtype=torch.float64)
    args = (torch.tensor([29]), torch.tensor([10]), torch.zeros(1, dtype=torch.long), torch.tensor([1]))
    rot = so3_exp(torch.tensor([0.0, 0.0, torch.pi / 2], dtype=torch.float64))  # symmetry of the cell
    with torch.no_grad():
        a = model(lat, x, *args)
        b = model(lat @ rot.T, x, *args)
    assert torch.allclose(b["lattice"], a["lattice"] @ rot.T, atol=1e-9)


def test_output_shapes_and_gradients():
    torch.manual_seed(0)
    m = GemsDiffNet(ModelConfig(hidden=16, enc_layers=1, dec_layers=1, knn=8, n_rbf=8, n_angle=3,
                                lattice_head="lsq"))
    lat, x, z, t, batch, n = random_batch(3)
    out = m(lat.float(), x.float(), z, t, batch, n)
    assert out["lattice"].shape == (3, 3, 3) and out["frac"].shape == (9, 3)
    assert ((out["frac"] >= 0) & (out["frac"] < 1)).all()
    (out["lattice"].sum() + out["disp"].sum()).backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("head", ["lsq", "edge"])
def test_equivariance_with_lattice_scale(head):
    torch.manual_seed(1)
    m = GemsDiffNet(ModelConfig(hidden=16, enc_layers=1, dec_layers=1, knn=12, n_rbf=8, n_angle=4,
                                lattice_head=head)).double().eval()
    lat, x, z, t, batch, n = random_batch(4)
    scale = torch.tensor([0.03, 0.5, 1.0], dtype=torch.float64)
    rot = so3_exp(torch.tensor([-1.3, 0.4, 2.2], dtype=torch.float64))
    inv = torch.linalg.inv(UNIMODULAR)
    with torch.no_grad():
        out = m(lat, x, z, t, batch, n, lattice_scale=scale)
        o = m(lat @ rot.T, x, z, t, batch, n, lattice_scale=scale)
        assert torch.allclose(o["lattice"], out["lattice"] @ rot.T, atol=1e-9)
        o = m(UNIMODULAR @ lat, (x @ inv) % 1, z, t, batch, n, lattice_scale=scale)
        assert torch.allclose(o["lattice"], UNIMODULAR @ out["lattice"], atol=1e-8)
        # c_out -> 0: the lattice action tends to the identity (the input cell is returned)
        o = m(lat, x, z, t, batch, n, lattice_scale=torch.zeros(3, dtype=torch.float64))
        assert torch.allclose(o["lattice"], lat, atol=1e-9)


def test_sqrtm_spd_and_lsq_gradients_finite():
    from gemsdiff_model.network import sqrtm_spd

    gen = torch.Generator().manual_seed(5)
    a = torch.randn(4, 3, 3, generator=gen, dtype=torch.float64)
    x = a @ a.mT + 0.05 * torch.eye(3, dtype=torch.float64)
    y = sqrtm_spd(x)
    assert torch.allclose(y @ y, x, atol=1e-9) and torch.allclose(y, y.mT, atol=1e-12)
    # identity input (degenerate eigenvalues): gradients stay finite (no eigh backward)
    eye = torch.eye(3, dtype=torch.float64)[None].repeat(2, 1, 1).requires_grad_(True)
    sqrtm_spd(eye * 2).sum().backward()
    assert torch.isfinite(eye.grad).all()


def test_coords_head_rotation_equivariant_and_trains():
    """lattice_head="coords": x_0 of the 6 shape + volume coordinates (rotation invariant); the
    predicted cell keeps the input's orientation, so it rotates with it. Not SL3(Z)-equivariant
    by design (coordinates of the given basis), so no basis-change check for the lattice."""
    from gemsdiff_model.data import CrystalBatch
    from gemsdiff_model.diffusion import LatticeScaler, Schedule, predicted_lattice, training_losses

    torch.manual_seed(2)
    m = GemsDiffNet(ModelConfig(hidden=16, enc_layers=1, dec_layers=1, knn=12, n_rbf=8, n_angle=4,
                                lattice_head="coords")).double().eval()
    schedule = Schedule()
    lat, x, z, t, batch, n = random_batch(6)
    rot = so3_exp(torch.tensor([0.7, -1.1, 0.3], dtype=torch.float64))
    inv = torch.linalg.inv(UNIMODULAR)
    with torch.no_grad():
        out = m(lat, x, z, t, batch, n)
        assert out["lattice_coords"].shape == (3, 6)
        pred = predicted_lattice(out, lat)
        o = m(lat @ rot.T, x, z, t, batch, n)
        assert torch.allclose(o["lattice_coords"], out["lattice_coords"], atol=1e-9)
        assert torch.allclose(predicted_lattice(o, lat @ rot.T), pred @ rot.T, atol=1e-8)
        assert torch.allclose(o["disp"], out["disp"], atol=1e-9)
        # positions stay SL3(Z)-equivariant
        o = m(UNIMODULAR @ lat, (x @ inv) % 1, z, t, batch, n)
        assert torch.allclose(o["disp"], out["disp"] @ inv, atol=1e-8)
    m.train()
    data = CrystalBatch(lattice=lat, frac=x, z=z, batch=batch, n_atoms=n)
    losses = training_losses(m, schedule, LatticeScaler.fit(lat), data,
                             torch.Generator().manual_seed(0))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and m.lattice_coords_head[0].weight.grad.abs().sum() > 0
