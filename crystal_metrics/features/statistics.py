"""`FeatureSet`: one set's per-structure features, energies, densities and element counts, and
its statistics file (`crystal-metrics stats`): what every set-level metric needs, in one .npz.

Besides mean and covariance (for FAD, pytorch-fid style) the file keeps the per-structure
formation energies, densities and element counts (for the EMDs) and latents (for KID), so a
reference set is embedded once and its structures are not needed again.

File format (`format` member; every version is read, the newest is written):
- `crystal-metrics-stats-1`: `n`, `mu`, `sigma`, `features` (n, d), `energies`, `densities`,
  `n_elements` (n,), `extractor_name`, `extractor_sha256`, `dim`, `extractor_variant`.
- `crystal-metrics-stats-2`: the same, but `features` (m, d) may be a fixed subset of the
  latents (`kid_limit` m > 0: those of the m structures with the smallest structure keys; 0: all
  n), with `feature_keys` (m,) uint64, the first 64 bits of each one's structure hash. A subset
  chosen by key does not depend on the order or the split of the set, so files made apart merge
  into exactly the file of the whole set (`FeatureSet.merge`).
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
from ..metrics.frechet import Moments

FORMAT = "crystal-metrics-stats-2"
FORMATS = ("crystal-metrics-stats-1", FORMAT)
_PER_STRUCTURE = ("energies", "densities", "n_elements")


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
    `save`/`load` write and read its statistics file, `merge` joins sets made apart.

    Attributes:
        features: (m, d) float64 latents: every structure's (m = n, in row order) or, in a file
            with a `kid_limit`, those of the m structures with the smallest keys (for KID).
        energies: (n,) formation energy per atom, eV/atom.
        densities: (n,) mass density, g/cm³.
        n_elements: (n,) number of distinct elements.
        extractor: what made `features`.
        errors: `StructureFailure`s of the structures that could not be read (not saved in the
            file).
        left_out: `StructureFailure`s of structures read but not embedded (more atoms than
            `max_atoms`; not saved in the file).
        keys: (m,) uint64 structure keys of `features` (first 64 bits of the structure hash);
            None when unknown (a file of format 1, a set built by hand).
        moments: the `Moments` of all n latents; None: those of `features` (m must be n).
        kid_limit: None when `features` holds every latent, else the most it keeps.
    """

    features: np.ndarray
    energies: np.ndarray
    densities: np.ndarray
    n_elements: np.ndarray
    extractor: ExtractorId
    errors: tuple = ()
    left_out: tuple = ()
    keys: np.ndarray | None = None
    moments: Moments | None = None
    kid_limit: int | None = None

    def __post_init__(self):
        m, d = len(self.features), self.extractor.dim
        if self.features.shape != (m, d):
            raise CrystalMetricsError(
                f"features of shape {self.features.shape} do not match the {d}-d extractor")
        if self.moments is None:
            object.__setattr__(self, "moments", Moments.of(self.features))
        n = self.moments.n
        if any(len(getattr(self, k)) != n for k in _PER_STRUCTURE):
            raise CrystalMetricsError("per-structure arrays have different lengths")
        if self.keys is not None and len(self.keys) != m:
            raise CrystalMetricsError(f"{len(self.keys)} keys for {m} latents")
        if m != min(n, self.kid_limit or n):
            raise CrystalMetricsError(f"{m} latents for {n} structures (KID limit "
                                      f"{self.kid_limit})")

    @property
    def n(self) -> int:
        return self.moments.n

    def take(self, indices) -> FeatureSet:
        """The structures at `indices` (positions in this set), same extractor, errors and
        left-out records; needs every structure's latent."""
        if self.kid_limit is not None:
            raise CrystalMetricsError(
                f"this statistics file keeps the latents of {len(self.features)} of its {self.n} "
                "structures (a KID subset): no subset of its structures can be scored")
        indices = np.asarray(indices, dtype=int)
        return FeatureSet(self.features[indices], *(getattr(self, k)[indices]
                                                     for k in _PER_STRUCTURE),
                          self.extractor, self.errors, self.left_out,
                          None if self.keys is None else self.keys[indices])

    @cached_property
    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d,) and covariance (d, d) of all n latents, float64."""
        try:
            return self.moments.gaussian()
        except ValueError as exc:
            raise CrystalMetricsError(str(exc)) from None

    def limited(self, kid_limit: int | None) -> FeatureSet:
        """This set keeping, for KID, only the latents of the `kid_limit` structures with the
        smallest keys (in row order); None: every latent. The moments (FAD) and the
        per-structure arrays stay whole."""
        return FeatureSet.merge([self], kid_limit)

    @classmethod
    def merge(cls, sets, kid_limit: int | None = None) -> FeatureSet:
        """The set of all structures of `sets` (same extractor), in the given order: per-structure
        arrays, latents and records concatenated, moments added. KID latents: with `kid_limit`
        (default: the smallest limit among `sets`, None when none has one) those of the
        `kid_limit` structures with the smallest keys (ties: the earlier row), exactly the
        latents a file of the whole set keeps."""
        sets = list(sets)
        if not sets:
            raise CrystalMetricsError("nothing to merge")
        for other in sets[1:]:
            sets[0].check_same_extractor(other)
        limits = [s.kid_limit for s in sets if s.kid_limit is not None]
        if kid_limit is None and limits:
            kid_limit = min(limits)
        if kid_limit is not None and any(limit < kid_limit for limit in limits):
            raise CrystalMetricsError(f"a set keeping {min(limits)} latents cannot give one "
                                      f"keeping {kid_limit}")
        features = np.concatenate([s.features for s in sets])
        keys = (None if any(s.keys is None for s in sets)
                else np.concatenate([s.keys for s in sets]).astype(np.uint64))
        if kid_limit is not None and len(features) > kid_limit:
            if keys is None:
                raise CrystalMetricsError("the latents have no structure keys (a statistics file "
                                          "of format 1): make it again to keep a KID subset")
            rows = np.sort(np.argsort(keys, kind="stable")[:kid_limit])
            features, keys = features[rows], keys[rows]
        moments = sets[0].moments
        for other in sets[1:]:
            moments = moments + other.moments
        return cls(features, *(np.concatenate([getattr(s, k) for s in sets])
                               for k in _PER_STRUCTURE),
                   sets[0].extractor, sum((tuple(s.errors) for s in sets), ()),
                   sum((tuple(s.left_out) for s in sets), ()), keys, moments, kid_limit)

    def save(self, path, overwrite: bool = False) -> None:
        """Write to `path` (.npz, the newest format) atomically; refuses to replace a file unless
        `overwrite`."""
        if self.n < 2:
            raise CrystalMetricsError(f"a statistics file needs at least 2 structures for a "
                                      f"covariance; this set has {self.n}")
        mu, sigma = self.gaussian
        keys = {} if self.keys is None else {"feature_keys": self.keys.astype(np.uint64)}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format=FORMAT, mu=mu, sigma=sigma, n=self.n,
                            extractor_name=self.extractor.name,
                            extractor_sha256=self.extractor.sha256, dim=self.extractor.dim,
                            extractor_variant=self.extractor.variant, features=self.features,
                            kid_limit=self.kid_limit or 0, **keys,
                            **{k: getattr(self, k) for k in _PER_STRUCTURE})
        atomic_write_bytes(path, buffer.getvalue(), overwrite)

    @classmethod
    def load(cls, path) -> FeatureSet:
        """Read a statistics file (any format version), checking that it is one and that it is
        consistent."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = str(data["format"])
                if version not in FORMATS:
                    raise KeyError("format")
                extractor = ExtractorId(str(data["extractor_name"]), str(data["extractor_sha256"]),
                                        int(data["dim"]), str(data["extractor_variant"]))
                arrays = {k: data[k] for k in ("features", *_PER_STRUCTURE)}
                n, gaussian = int(data["n"]), (data["mu"], data["sigma"])
                limit = int(data["kid_limit"]) if version != FORMATS[0] else 0
                keys = data["feature_keys"] if "feature_keys" in data.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
            raise CrystalMetricsError(f"{path} {_what_is_wrong(path)} (make one with "
                                      "'crystal-metrics stats PATH -o STATS.npz')") from None
        try:
            stats = cls(extractor=extractor, keys=keys, kid_limit=limit or None,
                        moments=Moments.from_gaussian(n, *gaussian), **arrays)
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
