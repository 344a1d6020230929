import math

import pytest
import torch

from gemsdiff_model import geometry as g


def random_lattices(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lat = torch.randn(n, 3, 3, generator=gen, dtype=torch.float64) * 3
    lat[torch.linalg.det(lat) < 0] *= -1
    return lat


def test_basis_orthonormal_and_decomposition():
    b = g.BASIS.reshape(9, 9)
    assert torch.allclose(b @ b.T, torch.eye(9, dtype=torch.float64), atol=1e-15)
    rot, shape, vol = g.BASIS[g.ROTATION], g.BASIS[g.SHAPE], g.BASIS[g.VOLUME]
    assert torch.allclose(rot, -rot.mT)                                   # so3
    assert torch.allclose(shape, shape.mT)                                # symmetric
    assert torch.allclose(shape.diagonal(dim1=-2, dim2=-1).sum(-1), torch.zeros(5, dtype=torch.float64))
    assert torch.allclose(vol[0], torch.eye(3, dtype=torch.float64) / math.sqrt(3))


def test_metric_coordinates_round_trip_and_invariance():
    lat = random_lattices(500)
    c = g.metric_coordinates(lat)
    assert c.shape == (500, 6)
    back = g.lattice_from_metric(c)
    assert torch.allclose(back @ back.mT, lat @ lat.mT, atol=1e-9)      # same metric
    assert torch.allclose(back, back.mT)                                   # symmetric representative
    # volume coordinate: tr S / sqrt(3) = log det / sqrt(3)
    assert torch.allclose(c[:, 5] * math.sqrt(3), torch.log(torch.linalg.det(lat)), atol=1e-10)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(2)))
    assert torch.allclose(g.metric_coordinates(lat @ q.T), c, atol=1e-10)  # rotation invariant


def test_metric_coordinates_of_a_cube_and_a_stretch():
    cube = torch.eye(3, dtype=torch.float64)[None] * 2.0
    c = g.metric_coordinates(cube)[0]
    # S = log(2) I: no shape, volume coordinate log(8) / sqrt(3)
    assert torch.allclose(c[:5], torch.zeros(5, dtype=torch.float64), atol=1e-12)
    assert c[5].item() == pytest.approx(math.log(8) / math.sqrt(3))
    stretched = torch.diag(torch.tensor([math.e, 1 / math.e, 1.0], dtype=torch.float64))[None]
    c = g.metric_coordinates(stretched)[0]
    # S = diag(1, -1, 0) = sqrt(2) * BASIS[6]: coordinate 3 (index 6 - 3) is sqrt(2), rest 0
    expected = torch.zeros(6, dtype=torch.float64)
    expected[3] = math.sqrt(2)
    assert torch.allclose(c, expected, atol=1e-12)


def test_canonical_basis_is_a_function_of_the_lattice():
    lat = random_lattices(200, seed=4)
    m = torch.tensor([[1.0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=torch.float64) @ \
        torch.tensor([[1.0, 0, 0], [2, 1, 0], [1, -3, 1]], dtype=torch.float64)
    a = g.canonical_basis_change(lat) @ lat
    b = g.canonical_basis_change(m @ lat) @ (m @ lat)
    assert torch.allclose(a, b, atol=1e-9)
    assert torch.allclose(torch.linalg.det(a), torch.linalg.det(lat), atol=1e-9)   # det +1


def test_torus_wrap_and_min_image():
    x = torch.tensor([-1e-20, 0.0, 1.0, 2.3, -0.7], dtype=torch.float64)
    w = g.wrap(x)
    assert ((w >= 0) & (w < 1)).all()
    d = torch.tensor([0.7, -0.7, 0.2, 1.4], dtype=torch.float64)
    assert torch.allclose(g.min_image(d), torch.tensor([-0.3, 0.3, 0.2, 0.4], dtype=torch.float64))


def test_lll_reduce_is_unimodular_and_same_lattice():
    lat = random_lattices(30, seed=5)
    red, u = g.lll_reduce(lat)
    assert torch.allclose(u, u.round())
    assert torch.allclose(torch.linalg.det(u).abs(), torch.ones(30, dtype=torch.float64))
    assert torch.allclose(red, u @ lat, atol=1e-9)
