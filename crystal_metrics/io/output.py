"""Atomic, no-clobber output files: a temporary file in the same folder, then a rename."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from ..errors import OutputError, OutputExistsError


def check_writable(path, overwrite: bool = False) -> None:
    """Raise before any work is done if `path` exists (without `overwrite`), is a folder, or
    cannot be created: its folder is missing or does not let us create files (read-only file
    system, no permission; tried by creating and removing a temporary file)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)} in {path.parent}") from None
    os.close(fd)
    os.unlink(probe)


def check_distinct(outputs: list[tuple[str, Path]], inputs: tuple = ()) -> None:
    """Raise if two outputs, given as (option, path), name the same file, or one is an input."""
    seen = {os.path.realpath(p): f"input {p}" for p in inputs if p is not None}
    for option, path in outputs:
        key = os.path.realpath(path)
        if key in seen:
            raise OutputError(f"{option} {path} is also {seen[key]}: give every output its own "
                              "file")
        seen[key] = f"the file of {option}"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def atomic_write_bytes(path, data: bytes, overwrite: bool = False) -> None:
    """Write `data` to `path` atomically; never replaces an existing file unless `overwrite`.

    A failure leaves `path` as it was and raises `OutputError` naming the file and the reason.
    """
    path = Path(path)
    check_writable(path, overwrite)
    try:
        _write_then_rename(path, data, overwrite)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None


def _write_then_rename(path: Path, data: bytes, overwrite: bool) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())  # mkstemp makes 0600; outputs get the usual umask-based mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file appeared meanwhile
            except FileExistsError:
                raise OutputExistsError(f"{path} exists; pass --overwrite to replace it") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path, text: str, overwrite: bool = False) -> None:
    """UTF-8 text version of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), overwrite)


def write_json(path, data: dict, overwrite: bool = False) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", overwrite)


def write_csv(path, rows: list[dict], overwrite: bool = False) -> None:
    """Write dict rows (keys of the first row are the header) as CSV, atomically."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue(), overwrite)
