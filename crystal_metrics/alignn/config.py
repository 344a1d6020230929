"""Read an ALIGNN training ``config.json`` (the file saved next to best_model.pt).

Only the fields that change inference are used; everything else (optimiser,
dataset, ...) is ignored. Unknown model names or graph settings the
featurizer cannot reproduce raise ``ConfigError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crystal_metrics.errors import CrystalMetricsError


class ConfigError(CrystalMetricsError):
    """An ALIGNN config.json cannot be used by this featurizer."""


ATOMWISE_NAMES = ("alignn_atomwise", "alignn_atomwise_pure")
CLASSIC_NAMES = ("alignn",)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture + graph settings of one ALIGNN checkpoint.

    ``kind`` is ``"atomwise"`` (LayerNorm, ALIGNN-FF family) or ``"classic"``
    (BatchNorm1d, JARVIS/MP property models).
    """

    name: str
    kind: str
    alignn_layers: int
    gcn_layers: int
    atom_input_features: int
    edge_input_features: int
    triplet_input_features: int
    embedding_features: int
    hidden_features: int
    output_features: int
    link: str
    classification: bool
    num_classes: int
    atomwise_output_features: int
    atomwise_weight: float
    additional_output_features: int
    # graph
    cutoff: float
    max_neighbors: int
    use_canonize: bool
    atom_features: str


def parse_config(cfg: dict[str, Any] | str | Path) -> ModelConfig:
    """Turn a config dict / config.json path into a ``ModelConfig``.

    Defaults follow alignn's ``TrainingConfig`` for fields absent from old
    files (``use_canonize`` defaulted to True there).
    """
    if not isinstance(cfg, dict):
        try:
            cfg = json.loads(Path(cfg).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read ALIGNN config {cfg}: {exc}.") from None
    model = cfg.get("model")
    if not isinstance(model, dict) or "name" not in model:
        raise ConfigError("ALIGNN config.json has no 'model' section with a 'name'.")
    name = model["name"]
    if name in ATOMWISE_NAMES:
        kind = "atomwise"
    elif name in CLASSIC_NAMES:
        kind = "classic"
    else:
        raise ConfigError(
            f"ALIGNN model '{name}' is not supported (use one of "
            f"{', '.join(ATOMWISE_NAMES + CLASSIC_NAMES)})."
        )
    strategy = cfg.get("neighbor_strategy", "k-nearest")
    if strategy != "k-nearest":
        raise ConfigError(
            f"neighbor_strategy '{strategy}' is not supported; only 'k-nearest' "
            "graphs are reproduced exactly."
        )
    atom_features = cfg.get("atom_features", "cgcnn")
    if atom_features != "cgcnn":
        raise ConfigError(f"atom_features '{atom_features}' is not supported (only 'cgcnn').")
    if int(model.get("extra_features", 0) or 0) != 0:
        raise ConfigError("ALIGNN models with extra_features are not supported.")
    if model.get("conv_type", "alignn") != "alignn":
        raise ConfigError(f"conv_type '{model['conv_type']}' is not supported.")
    if model.get("use_cutoff_function", False):
        raise ConfigError("ALIGNN models with use_cutoff_function are not supported.")
    aw = model.get("atomwise_output_features", 3 if name == "alignn_atomwise" else 0)
    return ModelConfig(
        name=name,
        kind=kind,
        alignn_layers=int(model.get("alignn_layers", 4)),
        gcn_layers=int(model.get("gcn_layers", 4)),
        atom_input_features=int(model.get("atom_input_features", 92)),
        edge_input_features=int(model.get("edge_input_features", 80)),
        triplet_input_features=int(model.get("triplet_input_features", 40)),
        embedding_features=int(model.get("embedding_features", 64)),
        hidden_features=int(model.get("hidden_features", 256)),
        output_features=int(model.get("output_features", 1) or 1),
        link=str(model.get("link", "identity")),
        classification=bool(model.get("classification", False)),
        num_classes=int(model.get("num_classes", 2)),
        atomwise_output_features=int(aw or 0),
        atomwise_weight=float(model.get("atomwise_weight", 0.0)),
        additional_output_features=int(model.get("additional_output_features", 0) or 0),
        cutoff=float(cfg.get("cutoff", 8.0)),
        max_neighbors=int(cfg.get("max_neighbors", 12)),
        use_canonize=bool(cfg.get("use_canonize", True)),
        atom_features=atom_features,
    )
