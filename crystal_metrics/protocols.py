"""Evaluation protocols of the literature: what each fixes, so that `evaluate --protocol NAME`
reproduces a paper's way of scoring (docs/metrics.md has the table of papers).

A protocol fixes the validity definition (SMACT table, DiffCSP's limit on oxidation-state
combinations), which generated structures the distribution metrics score (all, valid only, a
random subset of the valid ones), whether coverage (with CDVAE's per-dataset cutoffs) and
diversity are computed, and the energy model of the energy EMD. The seed of the subset and the
dataset (coverage cutoffs and CDVAE's property model) are not part of it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import CrystalMetricsError
from .metrics.selection import Selection
from .metrics.smact_check import DEFAULT_OXIDATION_STATES, DIFFCSP_MAX_COMBINATIONS

#: Energy models of the energy EMD: the ALIGNN extractor's formation energy, or CDVAE's
#: DimeNet++ property model of the dataset (`cdvae_energy.CdvaeEnergy`), whose predictions the
#: energy EMDs of CDVAE's and DiffCSP's tables compare.
ENERGY_MODELS = ("alignn", "cdvae")


@dataclass(frozen=True)
class Protocol:
    """What an evaluation protocol fixes.

    Attributes:
        name: 'custom' for settings given one by one.
        oxidation_states: SMACT table of the compositional validity ('smact221', 'smact14').
        max_oxidation_combinations: DiffCSP's limit (None: CDVAE's, none).
        valid_only, n_samples: the GEN structures of the EMDs, diversity and space groups.
        coverage: compute COV-R and COV-P (every readable GEN structure, CDVAE's cutoffs).
        diversity: compute CDVAE's composition and structure diversity.
        energy_model: model behind the energy EMD, one of ENERGY_MODELS.
    """

    name: str = "custom"
    oxidation_states: str = DEFAULT_OXIDATION_STATES
    max_oxidation_combinations: int | None = None
    valid_only: bool = False
    n_samples: int | None = None
    coverage: bool = False
    diversity: bool = False
    energy_model: str = "alignn"

    def __post_init__(self):
        if self.energy_model not in ENERGY_MODELS:
            raise CrystalMetricsError(f"unknown energy model {self.energy_model!r}; expected one "
                                      f"of {', '.join(ENERGY_MODELS)}")

    def selection(self, seed: int = 0) -> Selection:
        """The scored GEN structures, with the subset drawn with `seed`."""
        return Selection(self.valid_only, self.n_samples, seed)

    def as_dict(self) -> dict:
        return asdict(self)


PROTOCOLS = {
    # CDVAE's scripts/compute_metrics.py GenEval with smact 2.2.1 (Xie et al., ICLR 2022).
    "cdvae": Protocol("cdvae", valid_only=True, n_samples=1000, coverage=True, diversity=True,
                      energy_model="cdvae"),
    # DiffCSP's copy of GenEval (Jiao et al., NeurIPS 2023), also FlowMM's (Miller et al., ICML
    # 2024): no diversity, and more than 1e7 oxidation-state combinations is invalid.
    "diffcsp": Protocol("diffcsp", max_oxidation_combinations=DIFFCSP_MAX_COMBINATIONS,
                        valid_only=True, n_samples=1000, coverage=True, energy_model="cdvae"),
    # GemsDiff (Klipfel et al., AAAI 2024): every generated structure, without filtering; its
    # energy EMD (0.198) is ALIGNN's.
    "gemsdiff": Protocol("gemsdiff"),
}


def get_protocol(protocol: Protocol | str | None) -> Protocol:
    """A `Protocol` from itself, a name in PROTOCOLS, or None (crystal-metrics' defaults)."""
    if protocol is None:
        return Protocol()
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise CrystalMetricsError(f"unknown protocol {protocol!r}; expected one of "
                                  f"{', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol]
