"""Atomic checkpoint files and loading a trained denoiser."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .config import Config
from .diffusion import LatticeScaler, Schedule
from .errors import GemsDiffError
from .network import GemsDiffNet

FORMAT = "gemsdiff-checkpoint-1"


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_checkpoint(path) -> dict:
    """Load a checkpoint (a .pt file, or a run folder: its best.pt, else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise GemsDiffError(f"no best.pt or last.pt in run folder {path}")
    if not path.is_file():
        raise GemsDiffError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / not a torch file
        raise GemsDiffError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise GemsDiffError(f"{path} is not a gemsdiff checkpoint")
    return ckpt


def load_model(path, device="cpu"):
    """(model with EMA weights in eval mode, Schedule, LatticeScaler, Config) from a checkpoint."""
    ckpt = read_checkpoint(path)
    config = Config.from_dict(ckpt["config"])
    model = GemsDiffNet(config.model)
    model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    model.to(device).eval()
    return model, Schedule(config.diffusion), LatticeScaler.from_state_dict(ckpt["scaler"]), config
