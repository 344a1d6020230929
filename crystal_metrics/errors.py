"""Exceptions that carry a one-sentence message meant for the user."""


class CrystalMetricsError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class StructureError(CrystalMetricsError):
    """A structure cannot be used (corrupt, disordered, non-finite, singular lattice...)."""


class OutputExistsError(CrystalMetricsError):
    """An output file exists and overwriting it was not asked for."""


class OutputError(CrystalMetricsError, OSError):
    """An output file cannot be written (folder missing or read-only, disk full, two outputs
    naming the same file...); also an `OSError`."""


class PairingError(CrystalMetricsError):
    """Generated structures cannot be paired with their references (counts or ids disagree)."""


class MissingExtraError(CrystalMetricsError):
    """An optional dependency is not installed: the message names the extra that provides it."""


class SubsetSizeError(CrystalMetricsError):
    """Fewer structures pass the filter than the random subset (`--n-samples`) asks for: a usage
    error (exit 2)."""


class TooFewStructuresError(CrystalMetricsError):
    """Too few usable structures to score.

    `records` maps what happened to the others ("unreadable", "not embedded", ...) to their
    `{name, reason}` records, so that they can be shown with the message.
    """

    def __init__(self, message: str, records: dict[str, list[dict]] | None = None):
        super().__init__(message)
        self.records = {k: v for k, v in (records or {}).items() if v}
