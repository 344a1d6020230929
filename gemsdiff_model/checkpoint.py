"""Atomic checkpoint files and loading a trained denoiser."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from crystal_metrics.io import atomic_write_bytes

from .config import Config
from .diffusion import LatticeScaler, Schedule
from .errors import GemsDiffError
from .network import GemsDiffNet

FORMAT = "gemsdiff-checkpoint-1"


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save `obj` and replace ``path`` atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=True)


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
    except Exception as exc:  # noqa: BLE001 - corrupt / not a torch file
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
