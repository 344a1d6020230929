"""ALIGNN graph construction: identical to alignn / jarvis-tools k-nearest."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystal_metrics.alignn import cgcnn_feature_table
from crystal_metrics.alignn.graph import build_batch, knn_edges, line_graph_edges

DATA = Path(__file__).parent / "data" / "alignn"


def load_fixture(n=200):
    """First ``n`` MP-20 test structures (see data/alignn/make_fixtures.py)."""
    with gzip.open(DATA / "mp20_test_200.json.gz", "rt") as f:
        recs = json.load(f)[:n]
    return [Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"]) for r in recs]


def _same_multigraph(u1, v1, r1, u2, v2, r2):
    """Equal multisets of (src, dst, bond vector) up to 1e-6 Å."""
    def canon(u, v, r):
        u, v, r = np.asarray(u), np.asarray(v), np.asarray(r, dtype=np.float64)
        key = np.round(r, 3) + 0.0
        order = np.lexsort((key[:, 2], key[:, 1], key[:, 0], v, u))
        return u[order], v[order], r[order]

    if len(u1) != len(u2):
        return False
    a, b = canon(u1, v1, r1), canon(u2, v2, r2)
    return bool((a[0] == b[0]).all() and (a[1] == b[1]).all() and np.allclose(a[2], b[2], atol=1e-6))


@pytest.mark.parametrize("canon", [False, True])
def test_edges_identical_to_alignn(canon):
    """Same directed multigraph (incl. float32 bond vectors) as alignn's
    nearest_neighbor_edges + build_undirected_edgedata on 200 MP-20 structures."""
    graphs = pytest.importorskip("alignn.graphs")
    atoms_mod = pytest.importorskip("jarvis.core.atoms")
    for s in load_fixture():
        a = atoms_mod.pmg_to_atoms(s)
        edges, _ = graphs.nearest_neighbor_edges(a, cutoff=8.0, max_neighbors=12, use_canonize=canon)
        u, v, r, _ = graphs.build_undirected_edgedata(a, edges)
        su, sv, sr, mult = knn_edges(s.lattice.matrix, s.frac_coords, 8.0, 12, canon)
        assert (mult == 1).all()
        assert _same_multigraph(u.numpy(), v.numpy(), r.numpy(), su, sv, sr)


def test_merged_duplicates_expand_to_full_multigraph():
    for s in load_fixture(40):
        u, v, r, _ = knn_edges(s.lattice.matrix, s.frac_coords)
        mu, mv, mr, mult = knn_edges(s.lattice.matrix, s.frac_coords, merge_duplicates=True)
        assert mult.sum() == len(u) and mult.max() <= 2
        rep = np.repeat(np.arange(len(mu)), mult)
        assert _same_multigraph(u, v, r, mu[rep], mv[rep], mr[rep])


def test_line_graph_matches_definition():
    """Edge a -> b for every pair with dst[a] == src[b] (DGL backtracking=True)."""
    rng = np.random.default_rng(0)
    src = torch.from_numpy(rng.integers(0, 6, 40))
    dst = torch.from_numpy(rng.integers(0, 6, 40))
    dst[:3] = src[:3]  # self loops
    ls, ld = line_graph_edges(src, dst, 6)
    want = sorted((a, b) for a in range(40) for b in range(40) if dst[a] == src[b])
    assert sorted(zip(ls.tolist(), ld.tolist())) == want


def test_fixture_covers_self_image_edges_and_shell_ties():
    """The conformance fixtures exercise self-image edges and split shells."""
    loops = ties = 0
    for s in load_fixture(60):
        u, v, _, _ = knn_edges(s.lattice.matrix, s.frac_coords)
        loops += int((u == v).any())
        ties += int(len(knn_edges(s.lattice.matrix, s.frac_coords, shell_tol=1e-3)[0]) != len(u))
    assert loops > 0 and ties > 0


def test_neighbour_search_extends_cutoff_for_sparse_cells():
    # 1 atom in a 9 Å cube: nothing within 8 Å, then 6 within max(a,b,c)=9 Å,
    # then 2*9 Å: 6 at 9 Å + the whole 12.73 Å shell, each stored both ways
    s = Structure(Lattice.cubic(9.0), ["Si"], [[0, 0, 0]])
    u, _v, r, _ = knn_edges(s.lattice.matrix, s.frac_coords)
    d = np.sort(np.linalg.norm(r, axis=1))
    assert len(u) == 36
    assert np.allclose(d[:12], 9.0) and np.allclose(d[12:], 9.0 * 2**0.5)


def test_build_batch_shapes():
    structs = load_fixture(5)
    g = build_batch(structs, cgcnn_feature_table())
    assert g.atom_features.shape == (sum(len(s) for s in structs), 92)
    assert g.num_graphs == 5 and g.graph_id.max() == 4
    assert g.edge_weight is not None and g.edge_weight.shape == (len(g.src), 1)
    assert g.lg_weight.shape == (len(g.lg_src), 1)
    assert int(g.src.max()) < len(g.atom_features) and int(g.lg_dst.max()) < len(g.src)


def test_skewed_basis_gives_the_same_bonds_searched_in_a_reduced_basis():
    from crystal_metrics.alignn.graph import REDUCE_ABOVE_IMAGES, _image_box

    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    cube = Structure(Lattice.cubic(5.5), ["Na"] * 4 + ["Cl"] * 4, np.vstack([fcc, fcc + [.5, 0, 0]]))
    m = np.array([[1, 0, 0], [9, 1, 0], [9, 9, 1]])  # det 1: the same crystal, a skewed basis
    lattice = m @ cube.lattice.matrix  # entries exact in 5 decimals, so no rounding differs
    frac = (cube.frac_coords @ np.linalg.inv(m)) % 1.0
    assert np.prod([len(a) for a in _image_box(lattice, frac, 8.0)]) > REDUCE_ABOVE_IMAGES
    skewed = knn_edges(lattice, frac, shell_tol=1e-3)[:3]
    assert _same_multigraph(*knn_edges(cube.lattice.matrix, cube.frac_coords, shell_tol=1e-3)[:3],
                            *skewed)
    d = np.linalg.norm(skewed[2], axis=1)
    assert len(d) == 8 * 18 * 2 and np.allclose(np.sort(d)[:96], 2.75)  # 6 + 12 shells, both ways


@pytest.mark.parametrize("shell_tol", [0.0, 1e-3])
def test_unwrapped_coordinates_give_the_same_bonds(shell_tol):
    # atoms moved by whole cells (as in an unwrapped MD frame): every neighbour is still found
    s = load_fixture(1)[0]
    shifts = np.random.default_rng(0).integers(-4, 5, size=(len(s), 3))
    wrapped = knn_edges(s.lattice.matrix, s.frac_coords, shell_tol=shell_tol)[:3]
    unwrapped = knn_edges(s.lattice.matrix, s.frac_coords + shifts, shell_tol=shell_tol)[:3]
    assert _same_multigraph(*wrapped, *unwrapped)


def test_neighbour_search_in_small_groups_of_centres_is_bit_for_bit_the_same(monkeypatch):
    from crystal_metrics.alignn import graph

    structures = load_fixture(30)
    cases = [(s.lattice.matrix, s.frac_coords, tol, canon) for s in structures
             for tol, canon in ((0.0, False), (1e-3, False), (0.0, True))]
    whole = [knn_edges(lat, frac, use_canonize=canon, shell_tol=tol)
             for lat, frac, tol, canon in cases]
    monkeypatch.setattr(graph, "_MAX_PAIRS_PER_CHUNK", 40)  # a few centres per group
    for (lat, frac, tol, canon), expected in zip(cases, whole):
        for a, b in zip(knn_edges(lat, frac, use_canonize=canon, shell_tol=tol), expected):
            np.testing.assert_array_equal(a, b)


def test_graph_of_a_10648_atom_cell():
    # simple cubic, 2 Å: the 12th neighbour lies in the second shell (12 at 2.83 Å), so each
    # atom keeps 6 + 12 neighbours; merged, each directed edge appears once
    grid = np.stack(np.meshgrid(*[np.arange(22)] * 3, indexing="ij"), -1).reshape(-1, 3) / 22
    u, v, r, mult = knn_edges(np.eye(3) * 44.0, grid, shell_tol=1e-3, merge_duplicates=True)
    assert len(grid) == 10648 and len(u) == 10648 * 18 and (mult == 2).all()
    np.testing.assert_array_equal(np.bincount(u, minlength=len(grid)), 18)
    np.testing.assert_array_equal(np.bincount(v, minlength=len(grid)), 18)
    d = np.sort(np.linalg.norm(r, axis=1))
    assert np.allclose(d[:10648 * 6], 2.0) and np.allclose(d[10648 * 6:], 2 * 2 ** 0.5)
