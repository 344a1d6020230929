"""The crystal-metrics cache folder: downloaded weights, extracted checkpoints and the
per-structure cache (`embeddings.sqlite`)."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import CrystalMetricsError


def cache_dir() -> Path:
    """``$CRYSTAL_METRICS_CACHE`` or ``~/.cache/crystal-metrics`` (created)."""
    root = os.environ.get("CRYSTAL_METRICS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "crystal-metrics"
    )
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CrystalMetricsError(f"Cannot create the cache folder {path}: {exc.strerror}.") from None
    return path
