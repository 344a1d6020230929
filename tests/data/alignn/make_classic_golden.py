"""Make the classic-ALIGNN conformance fixture with alignn's DGL model.

Run in a separate environment with DGL (NOT the project venv):
    python -m venv /work/dglenv && . /work/dglenv/bin/activate
    pip install torch==2.13.0 && pip install dgl==1.1.3 alignn==2026.8.11
    python tests/data/alignn/make_classic_golden.py

Writes, next to this file:
  classic_random/config.json, classic_random/best_model.pt
      a small classic ``alignn`` model (2+2 layers, hidden 32) with random
      weights and random BatchNorm running statistics (seed 0), k-nearest
      graph, cutoff 8 Å, 12 neighbours, use_canonize=True;
  classic_golden.npz
      ``latent`` (N, 32) float32 = input of the final ``fc`` layer (AvgPooling
      of atom features) and ``out`` (N,) float32 model output of alignn's DGL
      ``ALIGNN`` in eval mode, for the first N=60 structures of
      mp20_test_200.json.gz, graphs from alignn's
      ``Graph.atom_dgl_multigraph`` (jarvis ``nearest_neighbor_edges``).
"""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from alignn.graphs import Graph
from alignn.models.alignn import ALIGNN, ALIGNNConfig
from jarvis.core.atoms import Atoms

HERE = Path(__file__).parent
N = 60
CONFIG = {
    "version": "random-weights fixture for crystal-metrics",
    "dataset": "none",
    "target": "random",
    "atom_features": "cgcnn",
    "neighbor_strategy": "k-nearest",
    "cutoff": 8.0,
    "max_neighbors": 12,
    "use_canonize": True,
    "model": {
        "name": "alignn",
        "alignn_layers": 2,
        "gcn_layers": 2,
        "atom_input_features": 92,
        "edge_input_features": 80,
        "triplet_input_features": 40,
        "embedding_features": 16,
        "hidden_features": 32,
        "output_features": 1,
        "link": "identity",
    },
}


def main() -> None:
    warnings.filterwarnings("ignore")
    import dgl

    torch.manual_seed(0)
    model = ALIGNN(ALIGNNConfig(**CONFIG["model"]))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm1d):
                mod.running_mean.normal_(0.0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)
    model.eval()
    folder = HERE / "classic_random"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG, indent=1))
    torch.save(model.state_dict(), folder / "best_model.pt")

    with gzip.open(HERE / "mp20_test_200.json.gz", "rt") as f:
        records = json.load(f)[:N]
    cap = {}
    model.fc.register_forward_hook(lambda m, i, o: cap.__setitem__("h", i[0]))
    latents, outs = [], []
    with torch.no_grad():
        for rec in records:
            atoms = Atoms(
                lattice_mat=rec["lattice"],
                coords=rec["frac_coords"],
                elements=rec["species"],
                cartesian=False,
            )
            g, lg = Graph.atom_dgl_multigraph(
                atoms,
                neighbor_strategy="k-nearest",
                cutoff=CONFIG["cutoff"],
                max_neighbors=CONFIG["max_neighbors"],
                atom_features="cgcnn",
                use_canonize=CONFIG["use_canonize"],
                compute_line_graph=True,
            )
            out = model((dgl.batch([g]), dgl.batch([lg]), None))
            latents.append(cap["h"][0].numpy())
            outs.append(float(out))
    np.savez_compressed(
        HERE / "classic_golden.npz",
        latent=np.array(latents, dtype=np.float32),
        out=np.array(outs, dtype=np.float32),
        material_id=np.array([r["material_id"] for r in records]),
    )
    print("wrote", N, "golden outputs; out range", min(outs), max(outs))


if __name__ == "__main__":
    main()
