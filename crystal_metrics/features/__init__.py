"""Per-structure descriptors of sets (ALIGNN embeddings, fingerprints, space groups, CDVAE
predictions) through one on-disk cache, and feature sets with their statistics files."""
from .cache import StructureCache, structure_hash
from .statistics import ExtractorId, FeatureSet

__all__ = ["ExtractorId", "FeatureSet", "StructureCache", "structure_hash"]
