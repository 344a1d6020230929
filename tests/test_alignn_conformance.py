"""Conformance of the pure-PyTorch ALIGNN with alignn's own implementations.

* ALIGNN-FF (atomwise, LayerNorm): against alignn's DGL-free
  ``ALIGNNAtomWisePure`` fed with alignn's own k-nearest edges (jarvis-tools
  ``nearest_neighbor_edges``, use_canonize=False) and the full line graph, on
  200 MP-20 test structures. Needs the [dev] dependency ``alignn`` and the
  ALIGNN-FF weights (fetched once with ``pip download alignn==2023.1.10`` into
  ``$CRYSTAL_METRICS_CACHE``, default ~/.cache/crystal-metrics).
* classic ALIGNN (BatchNorm): against golden outputs of alignn's DGL ``ALIGNN``
  on a random-weight checkpoint (tests/data/alignn/make_classic_golden.py).

Tolerances: latent 1e-4 relative (max-abs difference / max-abs value per
structure), output 1e-3 eV/atom.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crystal_metrics.alignn import load_extractor
from crystal_metrics.alignn.checkpoint import fetch_alignn_ff

DATA = Path(__file__).parent / "data" / "alignn"


def load_fixture(n=200):
    """First ``n`` MP-20 test structures (see data/alignn/make_fixtures.py)."""
    import gzip

    from pymatgen.core import Lattice, Structure

    with gzip.open(DATA / "mp20_test_200.json.gz", "rt") as f:
        recs = json.load(f)[:n]
    return [Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"]) for r in recs]


def _rel(a, b):
    return np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)


def test_classic_matches_dgl_golden():
    gold = np.load(DATA / "classic_golden.npz")
    structs = load_fixture(len(gold["out"]))
    ext = load_extractor(DATA / "classic_random", device="cpu", shell_tol=0.0)
    assert ext.config.kind == "classic" and ext.config.use_canonize
    lat, out = ext.embed(structs, batch_size=8)
    assert lat.dtype == np.float64 and lat.shape == (len(structs), 32)
    assert _rel(lat, gold["latent"].astype(np.float64)).max() < 1e-4
    assert np.abs(out - gold["out"]).max() < 1e-3


def test_classic_merged_equals_unmerged_graph():
    """Storing repeated edges once with weights gives the same numbers."""
    from crystal_metrics.alignn import cgcnn_feature_table
    from crystal_metrics.alignn.graph import build_batch

    ext = load_extractor(DATA / "classic_random", device="cpu", shell_tol=0.0)
    structs = load_fixture(12)
    with torch.inference_mode():
        a = ext.model(build_batch(structs, cgcnn_feature_table(), use_canonize=True))
        b = ext.model(build_batch(structs, cgcnn_feature_table(), use_canonize=True, merge_duplicates=False))
    assert torch.allclose(a[0], b[0], rtol=1e-4, atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


@pytest.fixture(scope="module")
def alignn_ff_reference():
    """(structures, latents, energies/atom) from alignn's ALIGNNAtomWisePure."""
    pytest.importorskip("alignn")
    from alignn.graphs import build_undirected_edgedata, nearest_neighbor_edges
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig
    from alignn.torch_graph_builder import TorchGraph, _line_graph_edges, batch_torch_graph_pairs
    from jarvis.core.atoms import pmg_to_atoms
    from jarvis.core.specie import get_node_attributes

    folder = fetch_alignn_ff()
    cfg = json.loads((folder / "config.json").read_text())
    mcfg = dict(cfg["model"], name="alignn_atomwise_pure", atomwise_output_features=0, calculate_gradient=False)
    ref = ALIGNNAtomWisePure(ALIGNNAtomWisePureConfig(**mcfg))
    sd = torch.load(folder / "best_model.pt", map_location="cpu", weights_only=True)
    res = ref.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["_species_table"] and not res.unexpected_keys
    ref.eval()
    cap = {}
    ref.fc.register_forward_hook(lambda m, i, o: cap.__setitem__("h", i[0]))

    def graph(s):
        a = pmg_to_atoms(s)
        edges, _ = nearest_neighbor_edges(
            a, cutoff=cfg["cutoff"], max_neighbors=cfg["max_neighbors"], use_canonize=cfg["use_canonize"]
        )
        u, v, r, _ = build_undirected_edgedata(a, edges)
        f = np.array([get_node_attributes(e, atom_features="cgcnn") for e in a.elements])
        g = TorchGraph(
            num_nodes=a.num_atoms, src=u, dst=v,
            ndata={"atom_features": torch.tensor(f, dtype=torch.float32)}, edata={"r": r},
        )
        ls, ld = _line_graph_edges(u, v, a.num_atoms)
        return g, TorchGraph(num_nodes=len(u), src=ls, dst=ld)

    structs = load_fixture(200)
    lats, ens = [], []
    with torch.no_grad():
        for i in range(0, len(structs), 4):
            g, lg = batch_torch_graph_pairs([graph(s) for s in structs[i : i + 4]])
            out = ref((g, lg, None))["out"]
            lats.append(cap["h"].double().numpy())
            ens.append(out.double().numpy().reshape(-1))
    return structs, np.concatenate(lats), np.concatenate(ens)


def test_alignn_ff_matches_alignn_pure(alignn_ff_reference):
    structs, ref_lat, ref_e = alignn_ff_reference
    ext = load_extractor(device="cpu", shell_tol=0.0)
    assert ext.id == "alignn-ff-255b95b24fec-256-shelltol0"
    assert ext.config.kind == "atomwise" and not ext.config.use_canonize
    lat, e = ext.embed(structs, batch_size=16)
    assert lat.shape == (200, 256) and e.shape == (200,)
    assert _rel(lat, ref_lat).max() < 1e-4
    assert np.abs(e - ref_e).max() < 1e-3


def test_default_shell_tol_only_changes_split_shells(alignn_ff_reference):
    """The default (whole-shell) graph equals alignn's wherever alignn's
    graph is not cut inside a degenerate neighbour shell."""
    from crystal_metrics.alignn.graph import knn_edges

    structs, ref_lat, ref_e = alignn_ff_reference
    same = [
        k for k, s in enumerate(structs[:60])
        if len(knn_edges(s.lattice.matrix, s.frac_coords)[0])
        == len(knn_edges(s.lattice.matrix, s.frac_coords, shell_tol=1e-3)[0])
    ]
    assert len(same) > 10
    lat, e = load_extractor(device="cpu").embed([structs[k] for k in same])
    assert _rel(lat, ref_lat[same]).max() < 1e-4 and np.abs(e - ref_e[same]).max() < 1e-3


def test_batching_and_splitting_do_not_change_results():
    gold = np.load(DATA / "classic_golden.npz")
    structs = load_fixture(24)
    ext = load_extractor(DATA / "classic_random", device="cpu", shell_tol=0.0)
    lat, out = ext.embed(structs, batch_size=24, max_triplets=3000, progress=True)
    assert _rel(lat, gold["latent"][:24].astype(np.float64)).max() < 1e-4
    assert np.abs(out - gold["out"][:24]).max() < 1e-3
    empty_lat, empty_out = ext.embed([])
    assert empty_lat.shape == (0, 32) and empty_out.shape == (0,)
