"""Feature sets of structures: statistics files and the on-disk embedding cache."""
from .cache import StructureCache, structure_hash
from .statistics import ExtractorId, FeatureSet

__all__ = ["ExtractorId", "FeatureSet", "StructureCache", "structure_hash"]
