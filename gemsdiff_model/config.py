"""Hyper-parameters, saved as JSON beside every checkpoint (``config.json``, ``ckpt["config"]``).

Each field carries its help text: ``gemsdiff-train`` builds one command-line option per field
(``train.config_options``), so an option, its default and its help are written once, here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def opt(default, help: str):
    """A config field with its command-line help."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    """Denoiser (``denoiser.Denoiser``). Defaults sized for CPU training (0.6 M parameters)."""

    hidden: int = opt(160, "atom / edge feature width")
    enc_layers: int = opt(2, "encoder interaction blocks (eq. 9b)")
    dec_layers: int = opt(2, "decoder interaction blocks (eq. 9c)")
    n_freq: int = opt(32, "Fourier frequencies per fractional coordinate difference")
    n_rbf: int = opt(16, "Gaussians of the shortest-image distance (0 = no distance feature)")
    rbf_max: float = opt(8.0, "last centre of the distance Gaussians (Å)")
    max_z: int = opt(100, "largest atomic number embedded")


@dataclass
class DiffusionConfig:
    """Forward processes (``diffusion.NoiseSchedule``) and loss weights; noise level tau in [0, 1]."""

    sigma_min: float = opt(0.005, "wrapped-normal std of the positions at tau = 0 (fractional)")
    sigma_max: float = opt(0.5, "wrapped-normal std of the positions at tau = 1")
    cosine_offset: float = opt(0.008, "offset s of the cosine schedule of the lattice")
    lattice_weight: float = opt(1.0, "weight of the lattice term of the loss")


@dataclass
class TrainConfig:
    epochs: int = opt(1000, "epochs to train (a resumed run may raise it)")
    batch_size: int = opt(64, "structures per batch (before the atom cap)")
    max_batch_atoms: int = opt(2048, "cap on atoms per batch")
    lr: float = opt(1e-3, "Adam learning rate (a resumed run may change it)")
    warmup_steps: int = opt(200, "linear learning-rate warm-up, optimiser steps")
    ema: float = opt(0.999, "decay of the exponential moving average of the weights")
    max_atoms: int = opt(20, "larger structures are skipped (MP-20)")
    val_fraction: float = opt(0.1, "held-out fraction for model selection")
    seed: int = opt(0, "seed of the split, the shuffling and the noise")
    grad_clip: float = opt(1.0, "gradient norm clip (0 = none)")
    precision: str = opt("fp32", "fp32, or bf16 (autocast of the training forward pass)")


#: settings a resumed run may change (everything else is fixed by the checkpoint)
RESUMABLE = {("train", "epochs"), ("train", "lr"), ("train", "precision")}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """Inverse of ``to_dict``; unknown keys raise ValueError (a config of another version)."""
        def build(kind, values):
            names = {f.name for f in fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
            return kind(**values)

        return cls(model=build(ModelConfig, data.get("model", {})),
                   diffusion=build(DiffusionConfig, data.get("diffusion", {})),
                   train=build(TrainConfig, data.get("train", {})))
