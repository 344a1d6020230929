"""Precomputed feature statistics (`crystal-metrics stats`), pytorch-fid style, in one .npz."""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CrystalMetricsError
from ..io import atomic_write_bytes
from ..metrics.frechet import gaussian_statistics

FORMAT = "crystal-metrics-stats-1"


@dataclass(frozen=True)
class ExtractorId:
    """What produced a feature set: model name, weights sha256 (full hex) and feature dimension."""

    name: str
    sha256: str
    dim: int

    @classmethod
    def of(cls, extractor) -> ExtractorId:
        """From any object with `.name`, `.sha256` and `.dim` (e.g. an ALIGNN extractor)."""
        return cls(str(extractor.name), str(extractor.sha256), int(extractor.dim))

    def as_dict(self) -> dict:
        """As reported with every FAD: sha256 shortened to its first 12 hex digits."""
        return {"name": self.name, "sha256": self.sha256[:12], "dim": self.dim}

    def __str__(self) -> str:
        return f"{self.name} (sha256 {self.sha256[:12]}, {self.dim}-d)"


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean (d,), covariance (d, d) in float64, the features (n, d) themselves (for KID), and
    the extractor that made them."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    extractor: ExtractorId

    @property
    def n(self) -> int:
        return len(self.features)

    @classmethod
    def from_features(cls, features, extractor: ExtractorId) -> FeatureStatistics:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != extractor.dim:
            raise CrystalMetricsError(
                f"features of shape {features.shape} do not match the {extractor.dim}-d extractor")
        mu, sigma = gaussian_statistics(features)
        return cls(mu, sigma, features, extractor)

    def save(self, path, overwrite: bool = False) -> None:
        """Write to `path` (.npz) atomically; refuses to replace a file unless `overwrite`."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format=FORMAT, mu=self.mu, sigma=self.sigma,
                            features=self.features.astype(np.float32), n=self.n,
                            extractor_name=self.extractor.name,
                            extractor_sha256=self.extractor.sha256, dim=self.extractor.dim)
        atomic_write_bytes(path, buffer.getvalue(), overwrite)

    @classmethod
    def load(cls, path) -> FeatureStatistics:
        """Read a statistics file, checking that it is one and that it is consistent."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise KeyError("format")
                extractor = ExtractorId(str(data["extractor_name"]), str(data["extractor_sha256"]),
                                        int(data["dim"]))
                mu, sigma = data["mu"], data["sigma"]
                features = data["features"].astype(np.float64)
                n = int(data["n"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            raise CrystalMetricsError(
                f"{path} is not a crystal-metrics statistics file (make one with "
                "'crystal-metrics stats PATH -o STATS.npz')") from None
        d = extractor.dim
        if mu.shape != (d,) or sigma.shape != (d, d) or features.shape != (n, d):
            raise CrystalMetricsError(f"{path} is damaged: array shapes do not match dim {d}")
        return cls(mu, sigma, features, extractor)

    def check_same_extractor(self, other: FeatureStatistics) -> None:
        """Refuse to compare features made by different extractors."""
        if self.extractor != other.extractor:
            raise CrystalMetricsError(
                f"cannot compare features of different extractors: {self.extractor} vs "
                f"{other.extractor}")
