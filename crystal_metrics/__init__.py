"""crystal-metrics: read generated and reference crystal sets and score them.

Validity (CDVAE convention), Earth Mover's Distances of density (g/cm³) and number of
elements, and the Fréchet distance used by the Fréchet ALIGNN Distance.
"""
from .api import density_emd, n_elements_emd, validity
from .crystal import Crystal
from .errors import CrystalMetricsError, OutputExistsError, StructureError
from .io import ReadError, StructureSet, read_structures
from .metrics.frechet import frechet_distance, gaussian_statistics
from .metrics.validity import ValidityResult

__version__ = "0.1.0"

__all__ = ["Crystal", "CrystalMetricsError", "OutputExistsError", "ReadError", "StructureError",
           "StructureSet", "ValidityResult", "density_emd", "frechet_distance",
           "gaussian_statistics", "n_elements_emd", "read_structures", "validity"]
