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
    # lattice head: "coords" (default): an MLP predicts the 6 shape + volume coordinates of the
    # clean cell (x_0) in the basis of the input cell (E(3)-invariant; SL3(Z)-equivariant only
    # through the canonical bases of the data, not as a function: see README); "lsq": each edge
    # predicts its log stretch lambda_k and Y^2 is their least-squares fit (u_k^T Y^2 u_k ~
    # exp(2 lambda_k)), fully equivariant; "edge" (first version): Y = exp(c_0 I + sum_k s_k u_k
    # u_k^T) with s_k predicted directly
    lattice_head: str = "coords"


@dataclass
class DiffusionConfig:
    """Forward processes (Table 1): linear beta schedules, T steps."""

    steps: int = 100
    beta_x: tuple = (1e-6, 2e-3)      # torus (fractional coordinates)
    beta_rho: tuple = (1e-5, 1e-1)    # lattice 9-vector
    # noise-level preconditioning of the lattice head: its output is scaled by
    # c_out(t) = sigma_t / sqrt(sigma_t^2 + sigma_d^2), sigma_t = sqrt(1 - abar^rho_t), and the
    # lattice loss divided by it (Schedule.lattice_scale); False: the paper's plain x_0 head
    lattice_preconditioning: bool = True
    lattice_sigma_data: float = 0.1   # sigma_d (9-d lattice coordinates)
    # positions: the displacement head's output is scaled by sigma^x_t = sqrt(1 - abar^x_t) and
    # eq. 20 divided by (sigma^x_t)^2 (the 1 / (2 sigma_t^2) weight of eq. 19, i.e. a unit-scale
    # noise target at every t); False: eq. 20 unweighted, dominated by t ~ T
    position_preconditioning: bool = True


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
    def from_dict(cls, data: dict) -> Config:
        def build(kind, values):
            names = {f.name for f in fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown {kind.__name__} keys: {sorted(unknown)}")
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            return kind(**values)
        # configs saved before these options existed keep their meaning
        diffusion, model = dict(data.get("diffusion", {})), dict(data.get("model", {}))
        if diffusion and "lattice_preconditioning" not in diffusion:
            diffusion["lattice_preconditioning"] = False
        if diffusion and "position_preconditioning" not in diffusion:
            diffusion["position_preconditioning"] = False
        if model and "lattice_head" not in model:
            model["lattice_head"] = "edge"
        return cls(model=build(ModelConfig, model),
                   diffusion=build(DiffusionConfig, diffusion),
                   train=build(TrainConfig, data.get("train", {})))
