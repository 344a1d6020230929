"""User-facing errors: the message is one sentence saying what is wrong and what to do."""
try:  # share the core's base class when it is installed, so callers can catch one type
    from crystal_metrics.errors import CrystalMetricsError as _Base
except ImportError:  # pragma: no cover
    _Base = Exception


class GemsDiffError(_Base):
    """A bad input, option or file for gemsdiff-train / gemsdiff-sample."""
