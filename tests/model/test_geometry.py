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


def test_exp_log_round_trip():
    lat = random_lattices(2000)
    v = g.lattice_to_vector(lat)
    assert v.shape == (2000, 9)
    assert torch.allclose(g.vector_to_lattice(v), lat, atol=1e-10)
    v2 = torch.randn(500, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    norm = v2[:, :3].norm(dim=-1, keepdim=True)
    v2[:, :3] *= (0.95 * math.pi / norm).clamp(max=1.0)   # rotation angles below pi (unique chart)
    assert torch.allclose(g.lattice_to_vector(g.vector_to_lattice(v2)), v2, atol=1e-9)


def test_round_trip_near_pi_and_identity():
    gen = torch.Generator().manual_seed(1)
    axis = torch.nn.functional.normalize(torch.randn(50, 3, generator=gen, dtype=torch.float64), dim=-1)
    for angle in (math.pi - 1e-9, math.pi - 1e-4, 1e-9, 0.0):
        rot = g.so3_exp(axis * angle)
        lat = (rot @ g.sym_exp(torch.diag_embed(torch.rand(50, 3, generator=gen, dtype=torch.float64)))).mT
        assert torch.allclose(g.vector_to_lattice(g.lattice_to_vector(lat)), lat, atol=1e-9)


def test_volume_coordinate_and_rotation_invariance():
    lat = random_lattices(20, seed=3)
    v = g.lattice_to_vector(lat)
    logdet = torch.log(torch.linalg.det(lat))
    assert torch.allclose(v[:, 8] * math.sqrt(3), logdet, atol=1e-10)   # tr S = log det
    rot = g.so3_exp(torch.tensor([0.3, -1.2, 0.5], dtype=torch.float64))
    v_rot = g.lattice_to_vector(lat @ rot.T)
    assert torch.allclose(v_rot[:, 3:], v[:, 3:], atol=1e-10)          # shape + volume invariant


def test_negative_determinant_rejected():
    with pytest.raises(ValueError):
        g.lattice_to_vector(-torch.eye(3, dtype=torch.float64)[None])


def test_lattice_parameters_cubic_and_hexagonal():
    p = g.lattice_parameters(torch.eye(3, dtype=torch.float64)[None] * 2)
    assert torch.allclose(p, torch.tensor([[2, 2, 2, math.pi / 2, math.pi / 2, math.pi / 2]], dtype=torch.float64))
    hexa = torch.tensor([[[1.0, 0, 0], [-0.5, math.sqrt(3) / 2, 0], [0, 0, 2]]], dtype=torch.float64)
    assert g.lattice_parameters(hexa)[0, 5].item() == pytest.approx(2 * math.pi / 3)


def test_canonical_parameters_basis_independent():
    lat = random_lattices(10, seed=4)
    u = torch.tensor([[1.0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=torch.float64) @ \
        torch.tensor([[1.0, 0, 0], [2, 1, 0], [1, -3, 1]], dtype=torch.float64)
    assert torch.allclose(g.canonical_parameters(u @ lat), g.canonical_parameters(lat), atol=1e-9)


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
