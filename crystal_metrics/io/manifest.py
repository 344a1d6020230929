"""`manifest.csv` of `gemsdiff-sample`: the reference each generated structure was sampled for."""
from __future__ import annotations

import csv
from pathlib import Path

from ..errors import PairingError

MANIFEST = "manifest.csv"


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
