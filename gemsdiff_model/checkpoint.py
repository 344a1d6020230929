"""Checkpoint files: atomic writes, safe reads with one-sentence errors, loading a trained model.

A checkpoint is a dict saved by ``torch.save``: ``format``, ``config`` (``Config.to_dict``),
``epoch``, ``model`` (weights; the EMA weights in best.pt), ``ema``, ``optimizer`` (None in
best.pt), ``standardizer`` (lattice statistics of the training set), ``best_val``,
``torch_rng``. It is always read with ``weights_only=True``.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from crystal_metrics.io import atomic_write_bytes

from .config import Config
from .denoiser import Denoiser
from .diffusion import NoiseSchedule
from .errors import GemsDiffError
from .lattice import LatticeStandardizer

FORMAT = "gemsdiff-checkpoint-2"


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save ``obj`` and replace ``path`` atomically (temporary file, fsync, rename)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=True)


def resolve(path) -> Path:
    """A .pt file, or a run folder's best.pt (else last.pt)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise GemsDiffError(f"no best.pt or last.pt in run folder {path}")
    if not path.is_file():
        raise GemsDiffError(f"checkpoint {path} does not exist")
    return path


def read_checkpoint(path) -> dict:
    """Load a checkpoint dict (``weights_only=True``); GemsDiffError for a missing, empty,
    damaged, foreign or older-format file."""
    path = resolve(path)
    if path.stat().st_size == 0:
        raise GemsDiffError(f"checkpoint {path} is empty (0 bytes): the file is damaged")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError,
            OSError):
        raise GemsDiffError(f"checkpoint {path} cannot be read: the file is damaged or is not "
                            f"a GemsDiff checkpoint") from None
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        raise GemsDiffError(f"{path} is not a GemsDiff checkpoint")
    if ckpt["format"] != FORMAT:
        raise GemsDiffError(f"{path} was written by another GemsDiff version (format "
                            f"{ckpt['format']!r}, this version reads {FORMAT!r}); retrain, or "
                            f"use the version that wrote it")
    return ckpt


def load_model(path, device="cpu"):
    """(denoiser with the EMA weights in eval mode, NoiseSchedule, LatticeStandardizer, Config)."""
    ckpt = read_checkpoint(path)
    config = Config.from_dict(ckpt["config"])
    model = Denoiser(config.model)
    model.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else ckpt["model"])
    model.to(device).eval()
    return (model, NoiseSchedule(config.diffusion),
            LatticeStandardizer.from_state_dict(ckpt["standardizer"]), config)


def export_weights(source, target: Path) -> None:
    """Write the EMA weights of a run's checkpoint as a small sampling-only checkpoint (no
    optimiser, no raw weights): ``python -c "from gemsdiff_model.checkpoint import
    export_weights; export_weights('runs/x/best.pt', 'gemsdiff_model/checkpoints/mp20.pt')"``."""
    ckpt = read_checkpoint(source)
    keep = ("format", "config", "epoch", "step", "standardizer", "best_val")
    save_atomic({**{k: ckpt[k] for k in keep}, "ema": ckpt["ema"], "model": None,
                 "optimizer": None}, Path(target))
