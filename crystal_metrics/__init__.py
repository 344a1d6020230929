"""crystal-metrics: read generated and reference crystal sets and score them.

Validity (CDVAE convention), Earth Mover's Distances of density (g/cm³), number of elements and
formation energy (eV/atom), the Fréchet ALIGNN Distance (FAD) with KID, the match rate and
RMSE of structure prediction, uniqueness and novelty, space-group distributions, CDVAE's
coverage (COV-R, COV-P) and diversity (the [coverage] extra), CHGNet energies (the [mlip] extra)
and CDVAE's property models (the energy EMD of CDVAE's and DiffCSP's tables); `evaluate` follows
a paper's protocol on request and can write an HTML report.
"""
from .api import (
    cdvae_energy_emd,
    chgnet_energy_emd,
    coverage,
    density_emd,
    diversity,
    energy_emd,
    evaluate,
    fad,
    match,
    n_elements_emd,
    novelty,
    symmetry,
    uniqueness,
    validity,
)
from .cdvae_energy import CdvaeEnergy
from .crystal import Crystal
from .errors import (
    CrystalMetricsError,
    MissingExtraError,
    OutputExistsError,
    PairingError,
    StructureError,
)
from .io import StructureSet, read_structures
from .metrics.frechet import frechet_distance, gaussian_statistics
from .metrics.matching import MatchResult
from .metrics.selection import Selection
from .metrics.uniqueness import UniquenessResult
from .metrics.validity import ValidityResult
from .mlip import Chgnet
from .protocols import PROTOCOLS, Protocol
from .report import write_report
from .scoring import FeatureSource

__version__ = "0.1.0"

__all__ = ["PROTOCOLS", "CdvaeEnergy", "Chgnet", "Crystal", "CrystalMetricsError",
           "FeatureSource", "MatchResult", "MissingExtraError", "OutputExistsError",
           "PairingError", "Protocol", "Selection", "StructureError", "StructureSet",
           "UniquenessResult", "ValidityResult", "cdvae_energy_emd", "chgnet_energy_emd",
           "coverage", "density_emd", "diversity", "energy_emd", "evaluate", "fad",
           "frechet_distance", "gaussian_statistics", "match", "n_elements_emd", "novelty",
           "read_structures", "symmetry", "uniqueness", "validity", "write_report"]
