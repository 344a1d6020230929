"""A small random-weight CDVAE property model folder, laid out as CDVAE's prop_models/<name>/."""
from __future__ import annotations

import sys
import types
from pathlib import Path
from unittest import mock

import torch

from crystal_metrics.cdvae.config import DimeNetConfig
from crystal_metrics.cdvae.model import DimeNetPlusPlus

HPARAMS = """data:
  prop: formation_energy_per_atom
  num_targets: 1
  niggli: true
  primitive: false
  graph_method: {graph_method}
  lattice_scale_method: scale_length
  readout: {readout}
  otf_graph: {otf_graph}
  eval_model_name: mp20
model:
  encoder:
    _target_: cdvae.pl_modules.gnn.DimeNetPlusPlusWrap
    num_targets: ${{data.num_targets}}
    hidden_channels: 16
    num_blocks: 2
    int_emb_size: 8
    basis_emb_size: 4
    out_emb_channels: 16
    num_spherical: 3
    num_radial: 4
    otf_graph: ${{data.otf_graph}}
    cutoff: 7.0
    max_num_neighbors: 20
    envelope_exponent: 5
    num_before_skip: 1
    num_after_skip: 1
    num_output_layers: 2
    readout: ${{data.readout}}
  _target_: cdvae.pl_modules.model.CrystGNN_Supervise
"""
CONFIG = DimeNetConfig(1, 16, 2, 8, 4, 16, 3, 4, 7.0, 5, 1, 1, 2, "mean",
                       "formation_energy_per_atom")


class StandardScalerTorch:
    """Pickles as CDVAE's scaler class (module path below)."""

    def __init__(self, means, stds):
        self.means, self.stds = means, stds


def save_scaler(path: Path, mean: float, std: float) -> None:
    """`prop_scaler.pt` as CDVAE writes it: a pickled cdvae.common.data_utils.StandardScalerTorch."""
    modules = {name: types.ModuleType(name) for name in
               ("cdvae", "cdvae.common", "cdvae.common.data_utils")}
    modules["cdvae.common.data_utils"].StandardScalerTorch = StandardScalerTorch
    StandardScalerTorch.__module__ = "cdvae.common.data_utils"
    with mock.patch.dict(sys.modules, modules):
        torch.save(StandardScalerTorch(torch.tensor(mean), torch.tensor(std)), path)


def random_model(folder: Path, seed: int = 0, mean: float = -1.0, std: float = 1.5,
                 graph_method: str = "crystalnn", readout: str = "mean",
                 otf_graph: str = "false", state_edit=None) -> Path:
    """Write hparams.yaml, epoch=0-step=0.ckpt ({"state_dict": encoder.*}) and prop_scaler.pt;
    `state_edit(state_dict)` may change the tensors before saving."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hparams.yaml").write_text(HPARAMS.format(graph_method=graph_method,
                                                        readout=readout, otf_graph=otf_graph))
    torch.manual_seed(seed)
    model = DimeNetPlusPlus(CONFIG)
    with torch.no_grad():
        model.rbf.freq.copy_(torch.arange(1, 5) * torch.pi)
    state = {f"encoder.{k}": v for k, v in model.state_dict().items()}
    if state_edit is not None:
        state_edit(state)
    torch.save({"epoch": 0, "global_step": 0, "state_dict": state}, folder / "epoch=0-step=0.ckpt")
    save_scaler(folder / "prop_scaler.pt", mean, std)
    return folder
