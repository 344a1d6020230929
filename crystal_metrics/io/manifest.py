"""`manifest.csv` of `gemsdiff-sample`: which structures a sample folder holds (`name`, the CIF
file name without `.cif`) and the reference each one was sampled for (`source_id`)."""
from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from ..errors import PairingError

MANIFEST = "manifest.csv"


class ManifestWarning(UserWarning):
    """A sample folder's manifest.csv cannot be read, or files in the folder are not listed."""


def read_manifest_names(folder) -> list[str] | None:
    """The structure names listed in `folder/manifest.csv` (its `name` column), in order.

    None when there is no manifest or it has no `name` column; a manifest that cannot be read
    is ignored with a `ManifestWarning`.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        reader = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline=""))
        if "name" not in (reader.fieldnames or ()):
            return None
        return [row["name"] for row in reader if row["name"]]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        warnings.warn(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc}); every "
                      "structure file in the folder is read", ManifestWarning, stacklevel=2)
        return None


def read_source_ids(folder) -> dict[str, str] | None:
    """{structure name: source_id} from `folder/manifest.csv` (columns `name`, `source_id`).

    None when `folder` is not a folder or has no manifest with a non-empty `source_id` column
    (samples of given compositions have none). A manifest naming a structure twice, or
    without a `name` column, is a `PairingError`.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "source_id" not in rows[0] or not any(row["source_id"] for row in rows):
        return None
    if "name" not in rows[0]:
        raise PairingError(f"{path} has a source_id column but no name column")
    ids = {row["name"]: row["source_id"] or "" for row in rows}
    if len(ids) != len(rows):
        raise PairingError(f"{path} lists a structure name more than once")
    return ids
