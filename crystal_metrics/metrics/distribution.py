"""Earth Mover's Distance (1-D Wasserstein-1) between property distributions of two sets."""
from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from ..crystal import Crystal


def densities(crystals) -> np.ndarray:
    """Mass densities in g/cm³, shape (n,)."""
    return np.array([c.density for c in crystals], dtype=np.float64)


def element_counts(crystals) -> np.ndarray:
    """Number of distinct elements per structure, shape (n,)."""
    return np.array([c.n_elements for c in crystals], dtype=np.float64)


def emd(values_a, values_b) -> float:
    """Wasserstein-1 distance between two 1-D samples, in their unit."""
    values_a, values_b = np.asarray(values_a, float), np.asarray(values_b, float)
    if len(values_a) == 0 or len(values_b) == 0:
        raise ValueError("EMD needs at least one value in each set")
    return float(wasserstein_distance(values_a, values_b))


def density_emd_of(gen: list[Crystal], ref: list[Crystal]) -> float:
    """EMD between the density distributions of two sets, in g/cm³."""
    return emd(densities(gen), densities(ref))


def n_elements_emd_of(gen: list[Crystal], ref: list[Crystal]) -> float:
    """EMD between the number-of-elements distributions of two sets (CDVAE's `wdist_num_elems`
    when `gen` holds its valid, randomly drawn structures)."""
    return emd(element_counts(gen), element_counts(ref))
