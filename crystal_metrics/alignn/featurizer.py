"""ALIGNN feature extractor: structures -> (latent, prediction).

``load_extractor()`` gives the default ALIGNN-FF extractor; ``embed`` returns
the 256-d latent (mean over atoms of the last atom features, i.e. the input
of the final linear layer) and the model output per structure (for ALIGNN-FF
the total energy per atom, eV/atom; for a property model its target, e.g.
formation energy per atom for ``mp_e_form_alignn``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from importlib import resources

import numpy as np
import torch

from crystal_metrics.alignn.checkpoint import Checkpoint, load_state_dict, resolve_checkpoint
from crystal_metrics.alignn.config import ModelConfig, parse_config
from crystal_metrics.alignn.graph import build_batch
from crystal_metrics.alignn.model import ALIGNN
from crystal_metrics.device import resolve_device
from crystal_metrics.errors import CrystalMetricsError
from crystal_metrics.weights import WeightsError

DEFAULT_SHELL_TOL = 1e-3  # Å, see graph.knn_edges


def _data_json(name: str) -> dict:
    return json.loads(resources.files("crystal_metrics.alignn").joinpath("data", name).read_text())


@cache
def cgcnn_feature_table() -> np.ndarray:
    """(119, 92) float32 CGCNN atom features indexed by atomic number.

    Elements missing from jarvis-tools' table get the row of Z=100, as in
    jarvis ``get_node_attributes``; row 0 is unused.
    """
    feats = _data_json("cgcnn_atom_init.json")["features"]
    table = np.zeros((119, len(feats["1"])), dtype=np.float32)
    for z in range(1, 119):
        table[z] = feats.get(str(z), feats["100"])
    return table


@cache
def jarvis_elemental_energies() -> dict:
    """{element symbol: JARVIS OptB88vdW energy per atom (eV/atom)}."""
    return {k: v["energy"] for k, v in _data_json("jarvis_unary_energies.json")["elements"].items()}


@lru_cache(maxsize=1)
def _reference_energy_table() -> np.ndarray:
    """`jarvis_elemental_energies` indexed by atomic number, shape (119,); NaN where missing."""
    from pymatgen.core import Element

    table = np.full(119, np.nan)
    for symbol, energy in jarvis_elemental_energies().items():
        table[Element(symbol).Z] = energy
    return table


def formation_energy_per_atom(numbers: Sequence, energies: Iterable[float]) -> np.ndarray:
    """Formation energy per atom from ALIGNN-FF total energies per atom.

    E_f = E - sum_el x_el * mu_el, with x_el the atomic fraction and mu_el the
    JARVIS-DFT OptB88vdW energy per atom of the elemental reference solid
    (jarvis-tools ``unary.json``, the references ALIGNN-FF's training energies
    use). ``numbers`` holds one array of atomic numbers per structure. Returns
    float64 (N,) in eV/atom; NaN where an element has no reference (89 elements
    are covered).
    """
    energies = np.asarray(list(energies), dtype=np.float64)
    if len(energies) != len(numbers):
        raise CrystalMetricsError(f"Got {len(energies)} energies for {len(numbers)} structures.")
    table = _reference_energy_table()
    return energies - np.array([table[np.asarray(z)].mean() for z in numbers])


class Extractor:
    """A loaded ALIGNN model that embeds crystals (`Crystal` or ordered pymatgen structures).

    Attributes:
        name: model name (``alignn-ff`` or the checkpoint folder/zip name).
        sha256: sha256 of the weights file.
        dim: latent dimension (hidden_features, 256 for public models).
        id: ``"<name>-<sha256[:12]>-<dim>"`` (plus ``-shelltol<x>`` when
            ``shell_tol`` is not the default), identifies features in caches.
        config: the parsed ``ModelConfig``.
        shell_tol: Å, neighbour-shell tie tolerance (``graph.knn_edges``);
            0 reproduces alignn/jarvis-tools graphs bit for bit.
    """

    def __init__(
        self,
        model: ALIGNN,
        cfg: ModelConfig,
        name: str,
        sha256: str,
        device,
        shell_tol: float = DEFAULT_SHELL_TOL,
        bf16: bool = False,
    ):
        self.shell_tol = float(shell_tol)
        self.bf16 = bool(bf16)
        self.model = model
        self.config = cfg
        self.name = name
        self.sha256 = sha256
        self.dim = cfg.hidden_features
        self.device = torch.device(device)
        self.id = f"{name}-{sha256[:12]}-{self.dim}"
        if self.shell_tol != DEFAULT_SHELL_TOL:
            self.id += f"-shelltol{self.shell_tol:g}"
        if self.bf16:
            self.id += "-bf16"

    def __repr__(self) -> str:
        return f"Extractor({self.id!r}, device={self.device})"

    def graphs(self, structures: Sequence):
        """The training-identical ``GraphBatch`` of ``structures`` (on CPU)."""
        c = self.config
        return build_batch(
            structures,
            cgcnn_feature_table(),
            c.cutoff,
            c.max_neighbors,
            c.use_canonize,
            shell_tol=self.shell_tol,
        )

    def _forward(self, chunk: Sequence, max_triplets: int) -> tuple[np.ndarray, np.ndarray]:
        g = self.graphs(chunk)
        if len(chunk) > 1 and len(g.lg_src) > max_triplets:  # bound peak memory
            half = len(chunk) // 2
            a, b = self._forward(chunk[:half], max_triplets), self._forward(chunk[half:], max_triplets)
            return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            latent, out = self.model(g.to(self.device))
        return latent.double().cpu().numpy(), out.double().cpu().numpy()

    @torch.inference_mode()
    def embed(
        self,
        structures: Sequence,
        batch_size: int = 16,
        progress: bool | None = False,
        max_triplets: int = 300_000,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed structures.

        Args:
            structures: ``Crystal`` objects, or ordered pymatgen ``Structure`` objects.
            batch_size: structures per forward pass.
            progress: show progress (None: a bar on a terminal, plain periodic lines
                otherwise; see ``crystal_metrics.progress``).
            max_triplets: a batch whose line graph has more edges than this
                is split (bounds memory to ~1 GB at hidden 256 for big cells).

        Returns:
            latents: float64 (N, dim).
            predictions: float64 (N,) model output (eV/atom for ALIGNN-FF;
                (N, out) when the model has several outputs).
        """
        n = len(structures)
        lat = np.empty((n, self.dim), dtype=np.float64)
        preds = []
        from crystal_metrics.progress import progress as progress_display

        with progress_display(n, f"ALIGNN {self.name}", "struct", progress) as bar:
            for start in range(0, n, batch_size):
                chunk = structures[start : start + batch_size]
                latent, out = self._forward(chunk, max_triplets)
                lat[start : start + len(chunk)] = latent
                preds.append(out)
                bar.update(len(chunk))
        pred = np.concatenate(preds) if preds else np.empty((0, 1))
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        return lat, pred


def build_model(config: dict | ModelConfig, state_dict: dict) -> ALIGNN:
    """ALIGNN module from a config and a state dict, loaded strictly.

    Unused output heads (``fc_atomwise``, ``fc_additional_output``) are built
    only when the checkpoint holds them and the config declares them; any
    other missing / unexpected / mis-shaped key raises ``WeightsError``.
    """
    cfg = config if isinstance(config, ModelConfig) else parse_config(config)

    def has(prefix):
        return any(k.startswith(prefix) for k in state_dict)

    model = ALIGNN(
        cfg,
        atomwise_head=cfg.atomwise_output_features > 0 and has("fc_atomwise."),
        additional_head=cfg.additional_output_features > 0 and has("fc_additional_output."),
    )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise WeightsError(
            f"Checkpoint does not match its config.json ({detail})."
        ) from None
    model.eval()
    return model.fuse()


def load_extractor(
    weights: None | str | object = None,
    device: None | str | torch.device = None,
    sha256: str | None = None,
    shell_tol: float = DEFAULT_SHELL_TOL,
    bf16: bool = False,
) -> Extractor:
    """Load an ALIGNN extractor.

    Args:
        weights: None / "alignn-ff" (default ALIGNN-FF, fetched once with pip),
            a checkpoint folder, a zip, or a URL of a zip (see
            ``crystal_metrics.alignn.checkpoint.resolve_checkpoint``).
        device: torch device; default cuda when available, else cpu.
        sha256: expected sha256 of a URL download.
        shell_tol: Å; the k-nearest rule keeps whole neighbour shells within
            this tolerance (default 1e-3) so features are invariant to
            rotation, origin shift and supercells; 0 reproduces alignn's
            graph bit for bit, including its rounding-noise tie breaking.
        bf16: run the network under bfloat16 autocast (id suffix ``-bf16``).
    """
    dev = resolve_device(device)  # first: a wrong device is found before any download
    ckpt: Checkpoint = resolve_checkpoint(weights, sha256=sha256)
    cfg = parse_config(ckpt.config)
    model = build_model(cfg, load_state_dict(ckpt))
    model.to(dev)
    return Extractor(model, cfg, ckpt.name, ckpt.sha256, dev, shell_tol=shell_tol, bf16=bf16)
