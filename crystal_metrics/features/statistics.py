"""`FeatureSet`: one set's per-structure features, energies, densities and element counts, and
its statistics file (`crystal-metrics stats`): what every set-level metric needs, in one .npz.

Besides mean and covariance (for FAD, pytorch-fid style) the file keeps the per-structure
latents (for KID), formation energies, densities and element counts (for the EMDs), so a
reference set is embedded once and its structures are not needed again.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import CrystalMetricsError
from ..io import atomic_write_bytes
from ..metrics.frechet import gaussian_statistics

FORMAT = "crystal-metrics-stats-1"
_PER_STRUCTURE = ("features", "energies", "densities", "n_elements")


@dataclass(frozen=True)
class ExtractorId:
    """What produced a feature set: model name, weights sha256 (full hex), feature dimension and
    any non-default graph setting (`variant`, e.g. 'shelltol0'; '' for the default)."""

    name: str
    sha256: str
    dim: int
    variant: str = ""

    @classmethod
    def of(cls, extractor) -> ExtractorId:
        """From an ALIGNN extractor (`.name`, `.sha256`, `.dim`, `.id`)."""
        default_id = f"{extractor.name}-{extractor.sha256[:12]}-{extractor.dim}"
        return cls(str(extractor.name), str(extractor.sha256), int(extractor.dim),
                   extractor.id[len(default_id) + 1:])

    @property
    def label(self) -> str:
        return f"{self.name}[{self.variant}]" if self.variant else self.name

    def as_dict(self) -> dict:
        """As reported with every FAD: sha256 shortened to its first 12 hex digits."""
        return {"name": self.label, "sha256": self.sha256[:12], "dim": self.dim}

    def __str__(self) -> str:
        return f"{self.label} (sha256 {self.sha256[:12]}, {self.dim}-d)"


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """One set's per-structure arrays (row i: one structure) and the extractor of its features;
    `save`/`load` write and read its statistics file.

    Attributes:
        features: (n, d) float64 latents.
        energies: (n,) formation energy per atom, eV/atom.
        densities: (n,) mass density, g/cm³.
        n_elements: (n,) number of distinct elements.
        extractor: what made `features`.
        errors: `StructureFailure`s of the structures that could not be read (not saved in the
            file).
        left_out: `StructureFailure`s of structures read but not embedded (more atoms than
            `max_atoms`; not saved in the file).
    """

    features: np.ndarray
    energies: np.ndarray
    densities: np.ndarray
    n_elements: np.ndarray
    extractor: ExtractorId
    errors: tuple = ()
    left_out: tuple = ()

    def __post_init__(self):
        n, d = len(self.features), self.extractor.dim
        if self.features.shape != (n, d):
            raise CrystalMetricsError(
                f"features of shape {self.features.shape} do not match the {d}-d extractor")
        if any(len(getattr(self, k)) != n for k in _PER_STRUCTURE):
            raise CrystalMetricsError("per-structure arrays have different lengths")

    @property
    def n(self) -> int:
        return len(self.features)

    def take(self, indices) -> FeatureSet:
        """The structures at `indices` (positions in this set), same extractor, errors and
        left-out records."""
        indices = np.asarray(indices, dtype=int)
        return FeatureSet(*(getattr(self, k)[indices] for k in _PER_STRUCTURE),
                                 self.extractor, self.errors, self.left_out)

    @cached_property
    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d,) and covariance (d, d) of the features, float64."""
        return gaussian_statistics(self.features)

    def save(self, path, overwrite: bool = False) -> None:
        """Write to `path` (.npz) atomically; refuses to replace a file unless `overwrite`."""
        if self.n < 2:
            raise CrystalMetricsError(f"a statistics file needs at least 2 structures for a "
                                      f"covariance; this set has {self.n}")
        mu, sigma = self.gaussian
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format=FORMAT, mu=mu, sigma=sigma, n=self.n,
                            extractor_name=self.extractor.name,
                            extractor_sha256=self.extractor.sha256, dim=self.extractor.dim,
                            extractor_variant=self.extractor.variant,
                            **{k: getattr(self, k) for k in _PER_STRUCTURE})
        atomic_write_bytes(path, buffer.getvalue(), overwrite)

    @classmethod
    def load(cls, path) -> FeatureSet:
        """Read a statistics file, checking that it is one and that it is consistent."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise KeyError("format")
                extractor = ExtractorId(str(data["extractor_name"]), str(data["extractor_sha256"]),
                                        int(data["dim"]), str(data["extractor_variant"]))
                arrays = {k: data[k] for k in _PER_STRUCTURE}
                gaussian = (data["mu"], data["sigma"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            raise CrystalMetricsError(f"{path} {_what_is_wrong(path)} (make one with "
                                      "'crystal-metrics stats PATH -o STATS.npz')") from None
        try:
            stats = cls(extractor=extractor, **arrays)
        except CrystalMetricsError as exc:
            raise CrystalMetricsError(f"{path} is damaged: {exc}") from None
        stats.__dict__["gaussian"] = gaussian  # as stored: the file is the reference
        return stats

    def check_same_extractor(self, other: FeatureSet) -> None:
        """Refuse to compare features made by different extractors: different weights (sha256),
        feature dimension or graph setting. The name is only a label (the same weights may come
        from the default download, a folder or a zip)."""
        mine, theirs = self.extractor, other.extractor
        if (mine.sha256, mine.dim, mine.variant) != (theirs.sha256, theirs.dim, theirs.variant):
            raise CrystalMetricsError(
                f"cannot compare features of different extractors: {self.extractor} vs "
                f"{other.extractor}")


def _what_is_wrong(path: Path) -> str:
    """Why `path` is not a readable statistics file, as the end of a sentence naming it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if size == 0:
        return "is empty (0 bytes): not a crystal-metrics statistics file"
    if head == b"PK\x03\x04" and not zipfile.is_zipfile(path):
        return (f"is truncated ({size} bytes; the end of the file is missing): not a usable "
                "statistics file")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            bad = "?"
        if bad is not None:
            return f"is damaged (member {bad} fails its check): not a usable statistics file"
    return "is not a crystal-metrics statistics file"
