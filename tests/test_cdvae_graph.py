"""CDVAE's CrystalNN graphs and DimeNet's triplets: hand-worked cases and pymatgen's StructureGraph."""
import numpy as np
import pytest

from crystal_metrics import Crystal, read_structures
from crystal_metrics.cdvae import graph as G
from crystal_metrics.cdvae.predictor import graph_or_reason
from support import MP20_DIR


def test_triplets_hand_worked():
    """Chain 0 - 1 - 2, edges e0: 1->0, e1: 0->1, e2: 2->1, e3: 1->2. Triplets k->j->i with k != i:
    into e0 (j=1, i=0) comes e2 (k=2), not e1 (k=0=i); into e3 (j=1, i=2) comes e1 (k=0), not e2."""
    kj, ji = G.triplets(np.array([1, 0, 2, 1]), np.array([0, 1, 1, 2]), 3)
    assert kj.tolist() == [2, 1] and ji.tolist() == [0, 3]


class _FakeCrystalNN:
    """CrystalNN answers for 2 sites, with the duplicates a real one gives."""

    @staticmethod
    def get_all_nn_info(structure):
        return [[{"site_index": 1, "image": (0, 0, 0)}, {"site_index": 0, "image": (0, -1, 0)},
                 {"site_index": 0, "image": (0, 1, 0)}],
                [{"site_index": 0, "image": (0, 0, 0)}, {"site_index": 0, "image": (-1, 0, 0)}]]


def test_bonds_follow_structure_graph_conventions(monkeypatch):
    """A bond named from both ends is kept once; (1 -> 0, image (-1,0,0)) is stored as
    (0 -> 1, image (1,0,0)); self-bonds to (0,±1,0) are one bond with a positive image."""
    monkeypatch.setattr(G, "crystalnn", lambda: _FakeCrystalNN)
    crystal = Crystal.checked(np.eye(3) * 4, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17])
    pairs, images = G.crystalnn_bonds(crystal, crystal.lattice)
    assert sorted(map(tuple, np.column_stack([pairs, images]).tolist())) == [
        (0, 0, 0, 1, 0), (0, 1, 0, 0, 0), (0, 1, 1, 0, 0)]
    graph = G.crystal_graph(crystal)  # both directions: 6 edges, vectors from target to source image
    assert len(graph.source) == 6
    expected = (crystal.frac_coords[graph.source] + graph.images
                - crystal.frac_coords[graph.target]) @ G.standard_lattice(crystal.lattice)
    np.testing.assert_allclose(graph.vectors, expected, atol=1e-12)


@pytest.mark.parametrize("index", range(4))
def test_bonds_equal_pymatgen_structure_graph(index):
    from pymatgen.analysis.graphs import StructureGraph
    from pymatgen.core import Lattice, Structure

    crystal = read_structures(MP20_DIR).crystals[index]
    lattice = G.standard_lattice(crystal.lattice)
    pairs, images = G.crystalnn_bonds(crystal, lattice)
    structure = Structure(Lattice(lattice), crystal.numbers, crystal.frac_coords)
    graph = StructureGraph.from_local_env_strategy(structure, G.crystalnn())
    expected = sorted((u, v, *image) for u, v, image in graph.graph.edges(data="to_jimage"))
    assert sorted(map(tuple, np.column_stack([pairs, images]).tolist())) == expected


def test_one_atom_cell_bonds_only_to_its_own_images_and_has_no_triplets():
    """Simple cubic Po: 6 neighbours, all images of atom 0, so 3 self-bonds, 6 edges, and every
    triplet has k = i by index: none is left (why a supercell is not the same input to CDVAE)."""
    graph = G.crystal_graph(Crystal.checked(np.eye(3) * 3.35, [[0, 0, 0]], [84]))
    assert len(graph.source) == 6 and not graph.source.any() and not graph.target.any()
    np.testing.assert_allclose(np.linalg.norm(graph.vectors, axis=1), 3.35)
    assert len(G.batch_graphs([graph]).triplet_kj) == 0


def test_batch_offsets_atoms_and_keeps_triplets_within_structures():
    crystals = read_structures(MP20_DIR).crystals[:3]
    graphs = [G.crystal_graph(c) for c in crystals]
    batch = G.batch_graphs(graphs)
    assert batch.n_structures == 3 and len(batch.numbers) == sum(c.n_atoms for c in crystals)
    assert batch.structure.tolist() == np.repeat([0, 1, 2], [c.n_atoms for c in crystals]).tolist()
    structure = batch.structure.numpy()
    source, target = batch.source.numpy(), batch.target.numpy()
    assert (structure[source] == structure[target]).all()
    kj, ji = batch.triplet_kj.numpy(), batch.triplet_ji.numpy()
    assert (target[kj] == source[ji]).all() and (source[kj] != target[ji]).all()
    single = sum(len(G.batch_graphs([g]).triplet_kj) for g in graphs)
    assert len(kj) == single


def test_unusable_structures_give_a_reason():
    coincident = Crystal.checked(np.eye(3) * 4, [[0, 0, 0], [0, 0, 0]], [11, 17])
    assert graph_or_reason(coincident).startswith("CrystalNN graph failed: ValueError")
    americium = Crystal.checked(np.eye(3) * 3.5, [[0, 0, 0]], [95])
    assert graph_or_reason(americium) == ("element Z=95 is beyond the model's atomic numbers "
                                          "(1-94)")
