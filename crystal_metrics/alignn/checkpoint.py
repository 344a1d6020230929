"""ALIGNN checkpoints: where the files of a model are, checked, and their tensors loaded.

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

Every failure raises ``WeightsError`` with a one-sentence message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from crystal_metrics.cachedir import cache_dir
from crystal_metrics.download import PinnedWheel, download_url, fetch_pinned
from crystal_metrics.weights import WeightsError, check_torch_file, sha256_file

ALIGNN_FF_PIP_SPEC = "alignn==2023.1.10"
ALIGNN_FF_MEMBERS = {
    "best_model.pt": "255b95b24fecb0ed2c6b4d326bfc557acc2ed3b36ad3a36d1cc99276765803b7",
    "config.json": "3b07cc63e8a6a73bf930c8aa1b0cea36209ee6a43e8bdc5efadc4fcb9ed7662a",
}
ALIGNN_FF_NAME = "alignn-ff"


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


def _read_config(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"Cannot read ALIGNN config {path}: {exc}.") from None


ALIGNN_FF_WHEEL = PinnedWheel("ALIGNN-FF", ALIGNN_FF_PIP_SPEC, (), "alignn-2023.1.10-*.whl",
                              "alignn/ff/", ALIGNN_FF_MEMBERS, "alignn-ff-2023.1.10",
                              "alignn/ff/best_model.pt and config.json", "about 15 MB")


def fetch_alignn_ff(cache: Path | None = None) -> Path:
    """Folder with the verified ALIGNN-FF ``config.json`` + ``best_model.pt``.

    Downloads the ``alignn==2023.1.10`` wheel with pip on first use (needs
    PyPI access once); afterwards works offline.
    """
    return fetch_pinned(ALIGNN_FF_WHEEL, cache)


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
