"""Hyper-parameters (paper Table 1 defaults), saved as JSON beside every checkpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class ModelConfig:
    """Denoiser f_theta. Defaults sized for a GPU; tests use much smaller values."""

    hidden: int = 128          # atom / edge feature width
    enc_layers: int = 3        # GNN_enc message-passing layers
    dec_layers: int = 3        # GNN_dec message-passing layers
    knn: int = 32              # neighbours per atom (Table 1)
    n_rbf: int = 32            # Gaussian distance basis size
    rbf_max: float = 10.0      # Å, last Gaussian centre
    n_angle: int = 8           # angle partners per edge (nearest edges of the same atom)
    max_z: int = 100           # largest atomic number embedded
    lattice_decoder: str = "equivariant"   # "equivariant": rho' = exp(S) rho (eq. 7); "cube": eq. 11


@dataclass
class DiffusionConfig:
    """Forward processes (Table 1): linear beta schedules, T steps."""

    steps: int = 100
    beta_x: tuple = (1e-6, 2e-3)      # torus (fractional coordinates)
    beta_rho: tuple = (1e-5, 1e-1)    # lattice 9-vector


@dataclass
class TrainConfig:
    epochs: int = 512
    batch_size: int = 128              # structures per batch (before the atom cap)
    max_batch_atoms: int = 4096        # cap on atoms per batch
    lr: float = 1e-3
    ema: float = 0.995
    max_atoms: int = 20                # larger structures are skipped (MP-20)
    val_fraction: float = 0.1
    seed: int = 0
    grad_clip: float = 10.0


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        def build(kind, values):
            names = {f.name for f in fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            return kind(**values)
        return cls(model=build(ModelConfig, data.get("model", {})),
                   diffusion=build(DiffusionConfig, data.get("diffusion", {})),
                   train=build(TrainConfig, data.get("train", {})))
