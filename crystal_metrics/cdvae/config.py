"""Read a CDVAE property model's ``hparams.yaml`` (the Hydra config saved with the checkpoint).

Only what changes inference is kept, and every setting this port cannot reproduce is an error.
Settings that CDVAE's evaluation (`scripts/eval_utils.prop_model_eval`) does not use either are
recorded and ignored:

* ``data.niggli`` / ``data.primitive``: applied when CDVAE preprocesses its training CSVs; its
  evaluation path (``preprocess_tensors``) receives them and does not use them: it builds each
  structure from its lattice lengths and angles as given.
* ``data.lattice_scale_method``: scales the lattice *targets* of CDVAE's generative model
  (``lattice_scaler.pt``); a property model's input is the unscaled structure.
* ``encoder.cutoff`` / ``max_num_neighbors``: with ``otf_graph: false`` the graph is CrystalNN's;
  the cutoff only sets the scale of the radial bases.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CrystalMetricsError


class ConfigError(CrystalMetricsError):
    """A CDVAE hparams.yaml describes a model this port cannot reproduce."""


@dataclass(frozen=True)
class DimeNetConfig:
    """Hyper-parameters of CDVAE's ``DimeNetPlusPlusWrap`` and what it predicts.

    ``cutoff`` in Å; ``prop`` is the CDVAE dataset column the model was trained on.
    """

    num_targets: int
    hidden_channels: int
    num_blocks: int
    int_emb_size: int
    basis_emb_size: int
    out_emb_channels: int
    num_spherical: int
    num_radial: int
    cutoff: float
    envelope_exponent: int
    num_before_skip: int
    num_after_skip: int
    num_output_layers: int
    readout: str
    prop: str
    graph_method: str = "crystalnn"
    otf_graph: bool = False


_INTERPOLATION = re.compile(r"^\$\{data\.(\w+)\}$")


def parse_hparams(path: Path) -> DimeNetConfig:
    """The `DimeNetConfig` of a CDVAE ``hparams.yaml``; `ConfigError` naming the file and the
    setting when it is not a DimeNet++ property model on CrystalNN graphs."""
    import yaml

    try:
        cfg = yaml.safe_load(Path(path).read_text())
        data, model = cfg["data"], cfg["model"]
        encoder = {k: _resolve(v, data) for k, v in model["encoder"].items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"Cannot read CDVAE hparams {path} ({type(exc).__name__}: {exc}).") from None

    def require(ok: bool, what: str):
        if not ok:
            raise ConfigError(f"{path}: {what} is not supported by crystal-metrics' CDVAE port.")

    require(str(model.get("_target_", "")).endswith("CrystGNN_Supervise"),
            f"model {model.get('_target_')}")
    require(str(encoder.pop("_target_", "")).endswith("gnn.DimeNetPlusPlusWrap"),
            f"encoder {model['encoder'].get('_target_')}")
    require(data.get("graph_method") == "crystalnn", f"graph_method {data.get('graph_method')}")
    require(encoder.get("otf_graph") is False, "otf_graph other than false")
    require(encoder.get("readout") in ("mean", "sum"), f"readout {encoder.get('readout')}")
    require(encoder.get("num_targets") == 1, f"num_targets {encoder.get('num_targets')}")
    for unused in ("otf_graph", "max_num_neighbors"):
        encoder.pop(unused, None)
    try:
        return DimeNetConfig(**encoder, prop=str(data["prop"]))
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: unexpected encoder settings ({exc}).") from None


def _resolve(value, data: dict):
    """Hydra's ``${data.key}`` interpolation, the only kind the encoder section uses."""
    if isinstance(value, str) and (match := _INTERPOLATION.match(value)):
        if match.group(1) not in data:
            raise KeyError(f"data.{match.group(1)}")
        return data[match.group(1)]
    return value
