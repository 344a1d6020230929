"""User-facing errors: the message is one sentence saying what is wrong and what to do."""
from crystal_metrics.errors import CrystalMetricsError


class GemsDiffError(CrystalMetricsError):
    """A bad input, option or file for gemsdiff-train / gemsdiff-sample."""
