"""Feature sets of structures: statistics files and the on-disk embedding cache."""
from .cache import EmbeddingCache, structure_hash
from .statistics import ExtractorId, FeatureStatistics

__all__ = ["EmbeddingCache", "ExtractorId", "FeatureStatistics", "structure_hash"]
