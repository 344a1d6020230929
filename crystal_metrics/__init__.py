"""crystal-metrics: read generated and reference crystal sets and score them.

Validity (CDVAE convention), Earth Mover's Distances of density (g/cm³), number of elements and
formation energy (eV/atom), and the Fréchet ALIGNN Distance (FAD) with KID.
"""
from .api import density_emd, n_elements_emd, validity
from .crystal import Crystal
from .errors import CrystalMetricsError, OutputExistsError, StructureError
from .io import ReadError, StructureSet, read_structures
from .metrics.frechet import frechet_distance, gaussian_statistics
from .metrics.validity import ValidityResult
from .scoring import FeatureSource, energy_emd, evaluate, fad

__version__ = "0.1.0"

__all__ = ["Crystal", "CrystalMetricsError", "FeatureSource", "OutputExistsError", "ReadError",
           "StructureError", "StructureSet", "ValidityResult", "density_emd", "energy_emd",
           "evaluate", "fad", "frechet_distance", "gaussian_statistics", "n_elements_emd",
           "read_structures", "validity"]
