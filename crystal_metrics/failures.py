"""Records of structures left out of a computation, and why: unreadable, too large to embed, or a
matcher, fingerprint or model failed on them. A record, not an exception: the structure is left
out and the others are scored. In JSON a record is `{name, reason}`; with two sets its name is
prefixed with the set ('gen:NAME', 'ref:NAME')."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StructureFailure:
    """A structure (or a file of structures) that could not be used: its name and the reason,
    one sentence."""

    name: str
    reason: str

    def as_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


def failures_at(names: Sequence[str], reasons: dict[int, str]) -> list[StructureFailure]:
    """Records of the structures at the positions of `reasons` ({position: reason}) among
    `names`, in ascending position."""
    return [StructureFailure(names[i], reason) for i, reason in sorted(reasons.items())]


def records(failures: Iterable[StructureFailure], label: str | None = None) -> list[dict]:
    """`failures` as JSON records; with `label` ('gen', 'ref') named 'LABEL:NAME'."""
    if label is None:
        return [f.as_dict() for f in failures]
    return [{"name": f"{label}:{f.name}", "reason": f.reason} for f in failures]


def gen_ref_records(gen: Iterable[StructureFailure], ref: Iterable[StructureFailure]
                    ) -> list[dict]:
    """Records of both sets, named 'gen:NAME' and 'ref:NAME' (a training set counts as REF)."""
    return records(gen, "gen") + records(ref, "ref")
