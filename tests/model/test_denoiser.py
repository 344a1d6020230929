import math

import pytest
import torch

from gemsdiff_model.config import ModelConfig
from gemsdiff_model.data import collate, load_records
from gemsdiff_model.denoiser import Denoiser
from gemsdiff_model.graph import pair_index, shortest_distance
from gemsdiff_model.lattice import LatticeStandardizer

F64 = torch.float64


def test_pair_index_by_hand():
    src, dst, structure = pair_index(torch.tensor([2, 1, 3]))
    pairs = list(zip(src.tolist(), dst.tolist()))
    assert pairs[:5] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    assert len(pairs) == 4 + 1 + 9 and structure.tolist() == [0] * 4 + [1] + [2] * 9
    assert set(pairs[5:]) == {(i, j) for i in (3, 4, 5) for j in (3, 4, 5)}


def test_shortest_distance_by_hand():
    cubic = torch.eye(3, dtype=F64) * 4.0
    hexagonal = torch.tensor([[3.0, 0, 0], [-1.5, 1.5 * math.sqrt(3), 0], [0, 0, 5.0]], dtype=F64)
    diff = torch.tensor([[0.5, 0, 0], [0.25, 0.25, 0], [0, 0, 0], [0, 0, 0],
                         [0.5, 0.5, 0]], dtype=F64)
    lattice = torch.stack([cubic, cubic, cubic, hexagonal, hexagonal])
    self_pair = torch.tensor([False, False, True, True, False])
    d = shortest_distance(diff, lattice, self_pair)
    # (0.5,0.5,0) in a 120-degree hexagonal cell: |a + b| / 2 = 3 / 2
    torch.testing.assert_close(d, torch.tensor([2.0, math.sqrt(2.0), 4.0, 3.0, 1.5], dtype=F64))


@pytest.fixture(scope="module")
def setup():
    from pathlib import Path

    torch.manual_seed(0)
    records, _ = load_records(Path(__file__).parent / "data", 20)
    data = collate(records)
    std = LatticeStandardizer.fit(data.lattice, data.n_atoms)
    model = Denoiser(ModelConfig(hidden=32, enc_layers=1, dec_layers=1, n_freq=4, n_rbf=8)).double()
    # non-trivial FiLM: zero-initialised layers would hide the conditioning
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    tau = torch.linspace(0.1, 0.9, len(data.n_atoms), dtype=F64)
    return model, data, std, tau


def run(model, data, std, tau, lattice=None, frac=None):
    lattice = data.lattice if lattice is None else lattice
    frac = data.frac if frac is None else frac
    coords = std.encode(lattice, data.n_atoms)
    return model(frac, coords, lattice, data.z, tau, data.batch, data.n_atoms)


def test_outputs_shapes_and_translation_free(setup):
    model, data, std, tau = setup
    eps_x, eps_l = run(model, data, std, tau)
    assert eps_x.shape == data.frac.shape and eps_l.shape == (len(data.n_atoms), 6)
    mean = torch.zeros(len(data.n_atoms), 3, dtype=F64).index_add(0, data.batch, eps_x)
    assert mean.abs().max() < 1e-12


def test_invariant_under_rotation_and_translation(setup):
    model, data, std, tau = setup
    eps_x, eps_l = run(model, data, std, tau)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(1)))
    rx, rl = run(model, data, std, tau, lattice=data.lattice @ q.T)
    torch.testing.assert_close(rx, eps_x)
    torch.testing.assert_close(rl, eps_l)
    shift = torch.tensor([0.3, -0.71, 2.2], dtype=F64)
    tx, tl = run(model, data, std, tau, frac=(data.frac + shift) % 1)
    torch.testing.assert_close(tx, eps_x)
    torch.testing.assert_close(tl, eps_l)


def test_permutation_equivariant(setup):
    model, data, std, tau = setup
    eps_x, eps_l = run(model, data, std, tau)
    # reverse the atoms inside every structure
    perm = torch.cat([torch.nonzero(data.batch == b)[:, 0].flip(0)
                      for b in range(len(data.n_atoms))])
    permuted = type(data)(data.lattice, data.frac[perm], data.z[perm], data.batch[perm],
                          data.n_atoms)
    px, pl = run(model, permuted, std, tau)
    torch.testing.assert_close(px, eps_x[perm])
    torch.testing.assert_close(pl, eps_l)


def test_noise_level_and_cell_reach_every_block(setup):
    model, data, std, tau = setup
    eps_x, _ = run(model, data, std, tau)
    other_x, _ = run(model, data, std, tau.flip(0))
    assert (other_x - eps_x).abs().max() > 1e-3
    bigger = data.lattice * 1.3
    big_x, _ = run(model, data, std, tau, lattice=bigger)
    assert (big_x - eps_x).abs().max() > 1e-3


def test_sampling_path_equals_training_path(setup):
    # under no_grad the blocks activate their message buffer in place; values must not change
    model, data, std, tau = setup
    with torch.enable_grad():
        trained = run(model, data, std, tau)
    with torch.no_grad():
        sampled = run(model, data, std, tau)
    for a, b in zip(trained, sampled):
        assert torch.equal(a.detach(), b)
    trained[0].square().sum().backward()             # the training path still has gradients
    assert all(p.grad is not None for p in model.encoder[0].message[1].parameters())
