"""Read structure sets from paths or Python objects, keeping a stable name for every structure.

Accepted: a folder (mixing the file types below; CSVs without a `cif` column are skipped; a
folder with a `manifest.csv` naming its structures, as gemsdiff-sample writes, gives the
structures it lists, warning about other structure files), a `.cif` file (one or many `data_`
blocks), a CDVAE-style `.csv`/`.csv.gz` with a `cif` column, an `.extxyz` file, a list of
pymatgen `Structure`, ASE `Atoms` or `Crystal`, a `StructureSet`, or the name of a shipped
reference (`mp20-test`...: its CSV, see `crystal_metrics.references`). Unusable input becomes a
`StructureFailure` record (name + reason) and the rest is read, unless `strict=True`.
"""
from __future__ import annotations

import errno
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..crystal import Crystal
from ..distributed import Shard
from ..errors import StructureError, TooFewStructuresError
from ..failures import StructureFailure, records
from ..parallel import parallel_map
from ..references import resolve
from .cif import Block, parse_cif_text
from .manifest import MANIFEST, ManifestWarning, read_manifest_names

CIF_SUFFIXES = (".cif",)
CSV_SUFFIXES = (".csv", ".csv.gz")
EXTXYZ_SUFFIXES = (".extxyz", ".xyz")
#: Below this many CIF texts, parsing stays in this process (a pool costs more than it saves).
PARALLEL_MIN_TEXTS = 500
#: File names shown in a warning about files a manifest does not list.
NAMES_SHOWN = 5


@dataclass
class StructureSet:
    """Named crystals read from one source, plus the errors met while reading it; `source` is
    the path it was read from ('' for Python objects), to name it in messages."""

    names: list[str]
    crystals: list[Crystal]
    errors: list[StructureFailure] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.crystals)

    def subset(self, positions) -> StructureSet:
        """The structures at `positions` (in that order), with this set's read errors and
        source."""
        return StructureSet([self.names[i] for i in positions],
                            [self.crystals[i] for i in positions], list(self.errors), self.source)

    @property
    def structures(self) -> list:
        """The crystals as pymatgen `Structure` objects (built on each access)."""
        return [c.to_pymatgen() for c in self.crystals]


def read_structures(source, *, strict: bool = False, workers: int | None = None,
                    progress: bool | None = None, shard: Shard | None = None) -> StructureSet:
    """Read `source` (see module doc) into a `StructureSet`.

    Args:
        strict: raise `StructureError` naming the first bad structure instead of recording it.
        workers: processes for CIF parsing (default: the CPUs this process may use).
        progress: show a progress bar (default: only on a terminal).
        shard: read only this process's block of the entries (structures, or files that cannot
            be read) of a path or list; the blocks of all ranks joined in rank order are the
            whole set. Not for a `StructureSet`.
    """
    if isinstance(source, StructureSet):
        if shard is not None:
            raise ValueError("a StructureSet is already read: shard its source instead")
        result = source
    elif isinstance(source, (str, os.PathLike)):
        result = _read_path(Path(resolve(source, "structures")), workers, progress, shard)
        result.source = str(source)
    else:
        result = _read_objects(source, shard)
    if strict and result.errors:
        first = result.errors[0]
        raise StructureError(f"{first.name}: {first.reason}")
    return result


def require_readable(structures: StructureSet, label: str | None = None) -> StructureSet:
    """`structures` when at least one was readable; else `TooFewStructuresError` ('no readable
    structures in GEN path') carrying the read errors, named 'gen:...' when `label` ('GEN',
    'REF', 'TRAIN') says which set it is."""
    if len(structures):
        return structures
    where = " ".join(part for part in (label, structures.source) if part)
    raise TooFewStructuresError(
        "no readable structures" + (f" in {where}" if where else ""),
        {"unreadable": records(structures.errors, label and label.lower())})


def _read_objects(objects, shard: Shard | None) -> StructureSet:
    from ase import Atoms
    from pymatgen.core import Structure

    if isinstance(objects, (Structure, Atoms, Crystal)):
        objects = [objects]
    objects = list(objects)
    block = shard.block(len(objects)) if shard else slice(0, len(objects))
    builder = _Builder()
    for i, obj in enumerate(objects[block], start=block.start):
        name = str(i)
        try:
            if isinstance(obj, Crystal):
                builder.add(name, obj)
            elif isinstance(obj, Structure):
                builder.add(name, Crystal.from_pymatgen(obj))
            elif isinstance(obj, Atoms):
                builder.add(name, Crystal.from_ase(obj))
            else:
                builder.fail(name, f"not a structure: {type(obj).__name__}")
        except StructureError as exc:
            builder.fail(name, str(exc))
    return builder.build()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in CSV_SUFFIXES[::-1] + CIF_SUFFIXES + EXTXYZ_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return ""


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(_suffix(path))] or path.name


@dataclass
class _CifJob:
    """CIF text to parse; a single block is named `name`, several are named `prefix:block`."""

    name: str
    prefix: str
    text: str


def _read_path(path: Path, workers: int | None, progress: bool | None,
               shard: Shard | None) -> StructureSet:
    per_file = _entries(path)
    if not any(per_file):
        none = "no structure files (.cif, .csv, .csv.gz, .extxyz) in this folder"
        per_file = [[(str(path), none)]]
    entries = [entry for file_entries in per_file for entry in file_entries]
    if shard is not None:
        entries = entries[shard.block(len(entries))]
    jobs = [job for job in entries if isinstance(job, _CifJob)]
    parsed = iter(parallel_map(_parse_one, [job.text for job in jobs], workers=workers,
                               min_items=PARALLEL_MIN_TEXTS, progress=progress, desc="reading",
                               unit="cif"))
    builder = _Builder()
    for entry in entries:
        if isinstance(entry, _CifJob):
            _add_blocks(builder, entry, next(parsed))
        else:
            builder.add_entry(*entry)
    return builder.build()


def _entries(path: Path) -> list[list[_CifJob] | list[tuple[str, Crystal | str]]]:
    """Per structure file of `path` (the file itself, or those of a folder), in order: the CIF
    jobs to parse, or entries (name, Crystal or reason) read directly; a path that cannot be
    read is one entry with its reason."""
    problem = _access_problem(path)
    if problem:
        return [[(str(path), problem)]]
    in_folder = path.is_dir()
    if in_folder:
        try:
            files = sorted(p for p in path.iterdir() if _suffix(p) and not p.is_dir())
        except OSError as exc:
            return [[(str(path), f"cannot list the folder: {exc.strerror}")]]
        files, per_file = _listed_in_manifest(path, files)
    else:
        files, per_file = [path], []
    for file in files:
        prefix = _stem(file) if in_folder else ""
        suffix = _suffix(file)
        problem = _access_problem(file) if in_folder else None
        if problem:
            per_file.append([(_stem(file) if suffix in CIF_SUFFIXES else str(file), problem)])
        elif suffix in CIF_SUFFIXES:
            text = _read_text(file)
            per_file.append([_CifJob(_stem(file), prefix, text) if isinstance(text, str)
                             else (text.name, text.reason)])
        elif suffix in CSV_SUFFIXES:
            per_file.append(_csv_jobs(file, prefix, in_folder))
        elif suffix in EXTXYZ_SUFFIXES:
            per_file.append(_extxyz_entries(file, prefix))
        else:
            per_file.append([(str(file), ("unsupported file type (expected .cif, .csv, .csv.gz "
                                          "or .extxyz)"))])
    return per_file


def _add_blocks(builder: _Builder, job: _CifJob, blocks: list[Block] | str) -> None:
    if isinstance(blocks, str):
        builder.add_entry(job.name, blocks)
        return
    for block_name, crystal in blocks:
        builder.add_entry(job.name if len(blocks) == 1 else _join(job.prefix, block_name), crystal)


def _access_problem(path: Path) -> str | None:
    """Why `path` cannot be opened (missing, broken or looping symbolic link, no permission), or
    None."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and path.is_symlink():
            return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
        if exc.errno == errno.ENOENT:
            return "path does not exist"
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
        return f"cannot access: {exc.strerror}"
    return None


def _listed_in_manifest(folder: Path, files: list[Path]) -> tuple[list[Path], list[list]]:
    """`files` less those a `manifest.csv` of `folder` does not list (with a warning), and an
    entry (name, reason) for each listed structure without a file; all of `files` when there is
    no manifest."""
    names = read_manifest_names(folder)
    if names is None:
        return files, []
    listed, files = set(names), [f for f in files if f.name != MANIFEST]
    strays = sorted(f.name for f in files if _stem(f) not in listed)
    if strays:
        shown = ", ".join(strays[:NAMES_SHOWN]) + (", ..." if len(strays) > NAMES_SHOWN else "")
        warnings.warn(f"{folder}: {len(strays)} structure file(s) not listed in {MANIFEST} are "
                      f"left out ({shown})", ManifestWarning, stacklevel=4)
    present = {_stem(f) for f in files}
    missing = [[(name, f"listed in {MANIFEST}, but there is no file for it in the folder")]
               for name in names if name not in present]
    return [f for f in files if _stem(f) in listed], missing


def _read_text(file: Path) -> str | StructureFailure:
    """The file's text, or a `StructureFailure` (named by the file) saying why it cannot be read."""
    try:
        return file.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        return StructureFailure(_stem(file), _file_error("CIF", exc))


def _file_error(kind: str, exc: Exception) -> str:
    """Why a file could not be read: the system's reason (no permission...) or the parser's."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"cannot read the file: {exc.strerror}"
    lines = str(exc).strip().splitlines()
    return f"cannot read {kind}: {lines[0] if lines else type(exc).__name__}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}:{key}" if prefix else key


def _csv_jobs(file: Path, prefix: str, in_folder: bool) -> list:
    """CIF jobs of a CDVAE-style CSV, named by `material_id` (if unique) or row number.

    In a folder, a CSV without a `cif` column is not a structure file and gives no entries.
    """
    import pandas as pd

    try:
        header = pd.read_csv(file, nrows=0).columns
        if "cif" not in header:
            return [] if in_folder else [(str(file), "CSV has no 'cif' column")]
        columns = ["cif"] + (["material_id"] if "material_id" in header else [])
        table = pd.read_csv(file, usecols=columns, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas/gzip raise many types for corrupt files
        return [(str(file), _file_error("CSV", exc))]
    keys = table["material_id"].tolist() if "material_id" in table else []
    if len(set(keys)) != len(table) or "" in keys:
        keys = [str(i) for i in range(len(table))]
    names = [_join(prefix, key) for key in keys]
    return [_CifJob(name, name, text) for name, text in zip(names, table["cif"].tolist())]


def _extxyz_entries(file: Path, prefix: str) -> list[tuple[str, Crystal | str]]:
    from ase.io import iread

    try:
        frames = list(iread(file, index=":", format="extxyz"))
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for malformed files
        return [(str(file), _file_error("extxyz", exc))]
    entries = []
    for i, atoms in enumerate(frames):
        try:
            entries.append((_join(prefix, str(i)), Crystal.from_ase(atoms)))
        except StructureError as exc:
            entries.append((_join(prefix, str(i)), str(exc)))
    return entries


def _parse_one(text: str) -> list[Block] | str:
    if not text.strip():
        return "empty CIF"
    try:
        return parse_cif_text(text)
    except StructureError as exc:
        return str(exc)


class _Builder:
    """Accumulates crystals and errors in input order, making names unique."""

    def __init__(self):
        self.names: list[str] = []
        self.crystals: list[Crystal] = []
        self.errors: list[StructureFailure] = []

    def add(self, name: str, crystal: Crystal) -> None:
        self.names.append(name)
        self.crystals.append(crystal)

    def fail(self, name: str, reason: str) -> None:
        self.errors.append(StructureFailure(name, reason))

    def add_entry(self, name: str, crystal_or_reason: Crystal | str) -> None:
        if isinstance(crystal_or_reason, str):
            self.fail(name, crystal_or_reason)
        else:
            self.add(name, crystal_or_reason)

    def build(self) -> StructureSet:
        counts = Counter(self.names)
        if len(counts) != len(self.names):
            seen: Counter = Counter()
            unique = []
            for name in self.names:
                seen[name] += 1
                unique.append(name if counts[name] == 1 else f"{name}#{seen[name]}")
            self.names = unique
        return StructureSet(self.names, self.crystals, self.errors)
