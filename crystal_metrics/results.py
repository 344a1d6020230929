"""What the metric functions of `api.py` return: one result object per metric, the one place
where a metric's JSON fields (`summary()`), the rows of its printed table (`rows()`, also the
HTML report's) and the lists of structures it left out (`left_out()`) are made.

A result reads as the mapping of its JSON fields (`result["fad"]`, `set(result)`); `summary()`
is a plain dict, ready for JSON. The objects of `metrics/` describe their own numbers
(`UniquenessResult.summary()`, `MatchResult.summary()`, `SpaceGroups.summary()`); what a command
reports besides them (set sizes, read errors, the scored subset, tolerances) is added here, and
nowhere else.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .failures import failures_at, gen_ref_records, records
from .features import FeatureSet
from .io import StructureSet
from .metrics.matching import MatchResult
from .metrics.selection import Selection
from .metrics.symmetry import CRYSTAL_SYSTEMS, SpaceGroups, space_group_comparison
from .metrics.uniqueness import TOLERANCES, UniquenessResult
from .metrics.validity import ValidityResult
from .protocols import Protocol

Rows = list[tuple[str, str]]
#: Columns of the per-structure CSV of `validity` and `evaluate`.
PER_STRUCTURE_COLUMNS = ("name", "formula", "n_atoms", "volume_A3", "density_g_cm3",
                         "min_distance_A", "structural_valid", "compositional_valid", "valid",
                         "formation_energy_eV_atom", "scored", "read_error")
#: Columns of the per-sample CSV of `match`.
MATCH_COLUMNS = ("name", "reference", "valid", "matched", "rms_dist", "error")


class Result(Mapping):
    """A metric's result. Subclasses define `_summary()` (the JSON fields, computed once) and
    `rows()`; `left_out()` lists the structures left out, as [(what happened, records)]."""

    def _summary(self) -> dict:
        raise NotImplementedError

    def rows(self) -> Rows:
        """(label, value) rows of the table the CLI prints."""
        raise NotImplementedError

    def left_out(self) -> list[tuple[str, list[dict]]]:
        """The structures left out, by what happened to them ('unreadable', 'not embedded'...),
        as {name, reason} records."""
        return []

    @cached_property
    def _fields(self) -> dict:
        return self._summary()

    def summary(self) -> dict:
        """The JSON fields (a new dict; its values are shared with the result)."""
        return dict(self._fields)

    def __getitem__(self, key):
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def _read_errors(errors: list[dict]) -> dict:
    """`n_read_errors` and `read_errors` (records)."""
    return {"n_read_errors": len(errors), "read_errors": errors}


def _share(fraction: float | None, count: int, n: int) -> str:
    return "n/a" if fraction is None else f"{fraction:.4f}  ({count}/{n})"


def _number(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


@dataclass(frozen=True)
class ScoredSelection:
    """Which GEN structures a distribution metric scored: those `selection` keeps of `n_readable`
    (`n_scored` of them); with `valid_only`, the `validity` they were filtered by and
    `n_candidates`, the structures the filter kept (default: the valid ones; evaluate also drops
    structures without a fingerprint, as CDVAE)."""

    selection: Selection
    n_readable: int
    n_scored: int
    validity: ValidityResult | None = None
    n_candidates: int | None = None

    def fields(self) -> dict:
        """`valid_only`, `n_samples`, `seed`, `n_scored`, `scored` (one line); with a validity,
        also `n_valid` and `oxidation_states`."""
        n_candidates = self.n_candidates
        if self.selection.valid_only and n_candidates is None:
            n_candidates = self.validity.n_valid
        fields = {**self.selection.as_dict(), "n_scored": self.n_scored,
                  "scored": self.selection.describe(self.n_scored, self.n_readable, n_candidates)}
        if self.validity is not None:
            fields.update(n_valid=self.validity.n_valid,
                          oxidation_states=self.validity.oxidation_states)
        return fields

    def row(self, label: str = "GEN scored") -> tuple[str, str]:
        return label, self.fields()["scored"]


def per_structure_rows(structures: StructureSet, validity: ValidityResult, energies=None,
                       scored=None) -> list[dict]:
    """One CSV row per structure (PER_STRUCTURE_COLUMNS), then one per read error;
    `formation_energy_eV_atom` and `scored` (in the EMDs: evaluate) are blank unless `energies`
    and `scored` (positions) are given."""
    in_emds = None if scored is None else set(np.asarray(scored).tolist())
    rows = [dict(zip(PER_STRUCTURE_COLUMNS, (
        name, crystal.formula, crystal.n_atoms, f"{crystal.volume:.6g}", f"{crystal.density:.6g}",
        f"{validity.min_distance[i]:.6g}", bool(validity.structural[i]),
        bool(validity.compositional[i]), bool(validity.overall[i]),
        "" if energies is None else f"{energies[i]:.6g}",
        "" if in_emds is None else i in in_emds, "")))
        for i, (name, crystal) in enumerate(zip(structures.names, structures.crystals))]
    blank = dict.fromkeys(PER_STRUCTURE_COLUMNS, "")
    return rows + [{**blank, "name": e.name, "read_error": e.reason} for e in structures.errors]


def _validity_rows(n: int, n_read_errors: int, validity: ValidityResult) -> Rows:
    fractions = validity.fractions()

    def line(key, flags):
        return f"{fractions[key]:.4f}  ({int(flags.sum())}/{n})" if n else "n/a"

    return [("structures", str(n)), ("read errors", str(n_read_errors)),
            ("structural", line("structural", validity.structural)),
            ("compositional", line("compositional", validity.compositional)),
            ("overall", line("overall", validity.overall))]


@dataclass(frozen=True, eq=False, kw_only=True)
class Validity(Result, ValidityResult):
    """`ValidityResult` of the readable structures of `structures`, which it keeps (read errors,
    names for the per-structure CSV)."""

    structures: StructureSet

    def _summary(self) -> dict:
        return {"n_structures": len(self.structures),
                **_read_errors(records(self.structures.errors)), "n_valid": self.n_valid,
                "validity": self.fractions(), "oxidation_states": self.oxidation_states}

    def rows(self) -> Rows:
        return _validity_rows(len(self.structures), len(self.structures.errors), self)

    def left_out(self):
        return [("unreadable", self["read_errors"])]

    def per_structure(self) -> list[dict]:
        """One CSV row per structure (PER_STRUCTURE_COLUMNS), then one per read error."""
        return per_structure_rows(self.structures, self)


@dataclass(frozen=True, eq=False)
class DistributionEmds(Result):
    """EMDs of density (g/cm³) and of the number of elements between the scored GEN structures
    and REF (`crystal-metrics density`)."""

    gen: StructureSet
    ref: StructureSet
    scored: ScoredSelection
    density_emd: float
    n_elements_emd: float

    def _summary(self) -> dict:
        return {"n_gen": len(self.gen), "n_ref": len(self.ref),
                **_read_errors(gen_ref_records(self.gen.errors, self.ref.errors)),
                "density_emd": self.density_emd,
                "n_elements_emd": self.n_elements_emd, **self.scored.fields()}

    def rows(self) -> Rows:
        return [("generated structures", str(len(self.gen))),
                ("reference structures", str(len(self.ref))),
                ("read errors", str(self["n_read_errors"])), self.scored.row(),
                ("density EMD (g/cm³)", f"{self.density_emd:.4f}"),
                ("n-elements EMD", f"{self.n_elements_emd:.4f}")]

    def left_out(self):
        return [("unreadable", self["read_errors"])]


@dataclass(frozen=True, eq=False, kw_only=True)
class Match(Result, MatchResult):
    """`MatchResult` with the generated and reference sets it was computed from."""

    gen: StructureSet
    ref: StructureSet

    def _summary(self) -> dict:
        return {**MatchResult.summary(self),
                **_read_errors(gen_ref_records(self.gen.errors, self.ref.errors))}

    def rows(self) -> Rows:
        k, n_ref = self["k"], self.pairing.n_ref
        return [("references", str(n_ref)), ("generated structures", str(self.n_gen)),
                ("samples per reference", str(k) if isinstance(k, int)
                 else f"{k['min']} to {k['max']}"),
                ("paired by", self.pairing.by), ("read errors", str(self["n_read_errors"])),
                ("invalid predictions", str(self.n_invalid)),
                ("match rate", _share(self.match_rate, self["n_matched"], n_ref)),
                ("RMSE", _number(self.rmse))]

    def left_out(self):
        return [("unreadable", self["read_errors"]), ("not matched", self["match_errors"])]

    def per_structure(self) -> list[dict]:
        """One CSV row per generated sample (MATCH_COLUMNS), then references without samples
        and unpaired read errors."""
        pairing = self.pairing
        reasons = {e.name: e.reason for e in [*self.gen.errors, *self.errors]}
        rows = []
        for name, r, valid, rms in zip(pairing.names, pairing.ref_index, self.valid,
                                       self.sample_rms):
            matched = not math.isnan(rms)
            rows.append(dict(zip(MATCH_COLUMNS, (name, self.ref_names[r], bool(valid), matched,
                                                 f"{rms:.6g}" if matched else "",
                                                 reasons.get(name, "")))))
        blank = dict.fromkeys(MATCH_COLUMNS, "")
        rows += [{**blank, "reference": name, "error": "no generated structure for this reference"}
                 for name, k in zip(self.ref_names, pairing.k) if k == 0]
        paired = set(pairing.names)
        return rows + [{**blank, "name": e.name, "error": e.reason} for e in self.gen.errors
                       if e.name not in paired]


@dataclass(frozen=True, eq=False, kw_only=True)
class Uniqueness(Result, UniquenessResult):
    """`UniquenessResult` with the set it was computed from and, for novelty, the training set
    (`train`, None for uniqueness alone)."""

    structures: StructureSet
    train: StructureSet | None = None

    def _summary(self) -> dict:
        counts = UniquenessResult.summary(self)
        if self.train is None:
            return {"n_structures": len(self.structures), **counts,
                    **_read_errors(records(self.structures.errors)),
                    "match_errors": records(self.errors), "tolerances": dict(TOLERANCES)}
        return {"n_gen": len(self.structures), "n_train": len(self.train), **counts,
                **_read_errors(gen_ref_records(self.structures.errors, self.train.errors)),
                "match_errors": gen_ref_records(self.errors, self.train_errors),
                "tolerances": dict(TOLERANCES)}

    def rows(self) -> Rows:
        n = len(self.structures)
        unique = ("unique", _share(self["uniqueness"], self["n_unique"], n))
        if self.train is None:
            return [("structures", str(n)), ("read errors", str(self["n_read_errors"])), unique]
        return [("generated structures", str(n)), ("training structures", str(len(self.train))),
                ("read errors", str(self["n_read_errors"])), unique,
                ("novel", _share(self["novelty"], self["n_novel"], n)),
                ("unique and novel", _share(self["unique_novel"], self["n_unique_novel"], n))]

    def left_out(self):
        return [("unreadable", self["read_errors"]), ("not compared", self["match_errors"])]


def kid_text(fields: Mapping) -> str:
    """KID ± its spread over subsets, the subset size, and a word on values below zero."""
    kid, std = fields["kid"], fields["kid_std"]
    spread = "± n/a (fewer than 4 structures in a set)" if std is None else f"± {std:.5f}"
    text = f"{kid:.5f} {spread} (subsets of {fields['kid_subset_size']})"
    if kid < 0:
        text += "; below 0: no difference detected (the estimate is unbiased, so it scatters " \
                "around 0 for equal distributions)"
    return text


@dataclass(frozen=True, eq=False)
class _FeatureSetPair(Result):
    """A result computed from GEN's and REF's feature sets (one extractor)."""

    gen: FeatureSet
    ref: FeatureSet

    def _sizes(self) -> dict:
        return {"n_gen": self.gen.n, "n_ref": self.ref.n,
                "extractor": self.gen.extractor.as_dict()}

    def _not_embedded(self) -> dict:
        left_out = gen_ref_records(self.gen.left_out, self.ref.left_out)
        return {"n_not_embedded": len(left_out), "not_embedded": left_out}

    def _size_row(self) -> tuple[str, str]:
        return "generated / reference", f"{self.gen.n} / {self.ref.n}"

    def left_out(self):
        return [("not embedded", self["not_embedded"])]


@dataclass(frozen=True, eq=False)
class FeatureScores(_FeatureSetPair):
    """FAD and KID of two feature sets of one extractor (`crystal-metrics fad`)."""

    fad: float
    kid: float
    kid_std: float | None
    kid_subset_size: int

    def _summary(self) -> dict:
        return {"fad": self.fad, **self._sizes(), "kid": self.kid, "kid_std": self.kid_std,
                "kid_subset_size": self.kid_subset_size, **self._not_embedded()}

    def rows(self) -> Rows:
        left_out = self["n_not_embedded"]
        return [("FAD", f"{self.fad:.4f}"), ("KID", kid_text(self)), self._size_row(),
                *([("not embedded (--max-atoms)", str(left_out))] if left_out else []),
                ("extractor", str(self.gen.extractor))]


@dataclass(frozen=True, eq=False)
class AlignnEnergyEmd(_FeatureSetPair):
    """EMD of the ALIGNN extractor's formation energies (eV/atom) of the scored GEN structures
    and REF (`crystal-metrics energy`)."""

    energy_emd: float
    scored: ScoredSelection | None = None

    def _summary(self) -> dict:
        return {"energy_emd": self.energy_emd, **self._sizes(), **self._not_embedded(),
                **(self.scored.fields() if self.scored else {})}

    def rows(self) -> Rows:
        return [("energy EMD (eV/atom)", f"{self.energy_emd:.4f}"), self._size_row(),
                *([self.scored.row()] if self.scored else []),
                ("extractor", str(self.gen.extractor))]


@dataclass(frozen=True, eq=False)
class ChgnetEnergyEmd(Result):
    """EMD of CHGNet's energies per atom (eV/atom) of GEN and REF (`energy --model chgnet`);
    `gen`, `ref`: `mlip.EnergySet`s, `version`: CHGNet's."""

    gen: object
    ref: object
    energy_emd: float
    version: str
    relax_steps: int = 0
    fmax: float | None = None
    scored: ScoredSelection | None = None

    def _summary(self) -> dict:
        errors = gen_ref_records(self.gen.errors, self.ref.errors)
        fields = {"energy_emd": self.energy_emd, "n_gen": len(self.gen.energies),
                  "n_ref": len(self.ref.energies),
                  "energy_model": {"name": "chgnet", "version": self.version,
                                   "energy": "total energy per atom (MPtrj GGA/GGA+U)"},
                  "relax_steps": self.relax_steps, "n_errors": len(errors), "errors": errors}
        if self.relax_steps:
            fields |= {"fmax": self.fmax, "gen_rmsd_mean": float(self.gen.rmsd.mean()),
                       "ref_rmsd_mean": float(self.ref.rmsd.mean())}
        return {**fields, **(self.scored.fields() if self.scored else {})}

    def rows(self) -> Rows:
        rows = [("energy EMD (eV/atom)", f"{self.energy_emd:.4f}"),
                ("generated / reference", f"{self['n_gen']} / {self['n_ref']}"),
                *([self.scored.row()] if self.scored else []),
                ("model", f"chgnet {self.version} (total energy per atom)")]
        if self.relax_steps:
            rows.append((f"mean RMSD after {self.relax_steps} steps (Å)",
                         f"{self['gen_rmsd_mean']:.4f} / {self['ref_rmsd_mean']:.4f}"))
        return rows

    def left_out(self):
        return [("left out", self["errors"])]


@dataclass(frozen=True)
class EnergyScores:
    """The energy EMD of an evaluation or of `energy --model cdvae`: its value and, when an
    energy model other than the ALIGNN extractor made it, the model (`describe()` of CDVAE's) and
    the structures it failed on (records named 'gen:...' or 'ref:...')."""

    energy_emd: float
    model: dict | None = None
    errors: list[dict] | None = None

    def fields(self) -> dict:
        if self.model is None:
            return {"energy_emd": self.energy_emd}
        return {"energy_emd": self.energy_emd, "energy_model": self.model,
                "energy_errors": self.errors}

    def rows(self) -> Rows:
        """The energy EMD, with its unit and model when an energy model made it."""
        if self.model is None:
            return [("energy EMD (eV/atom)", f"{self.energy_emd:.4f}")]
        model = self.model
        return [(f"energy EMD ({model['unit']})", f"{self.energy_emd:.4f}"),
                ("energy model", f"{model['name']} ({model['property']}, sha256 {model['sha256']})")]


@dataclass(frozen=True, eq=False)
class CdvaeEnergyEmd(Result):
    """EMD of CDVAE's predicted property of GEN and REF (`energy --model cdvae`): `gen_values`,
    `ref_values` (NaN where the model failed), read errors from `gen` and `ref`."""

    gen: StructureSet
    ref: StructureSet
    gen_values: np.ndarray
    ref_values: np.ndarray
    energy: EnergyScores
    scored: ScoredSelection | None = None

    def _summary(self) -> dict:
        errors = gen_ref_records(self.gen.errors, self.ref.errors) + self.energy.errors
        return {"energy_emd": self.energy.energy_emd,
                "n_gen": int(np.isfinite(self.gen_values).sum()),
                "n_ref": int(np.isfinite(self.ref_values).sum()),
                "energy_model": self.energy.model, "n_errors": len(errors), "errors": errors,
                **(self.scored.fields() if self.scored else {})}

    def rows(self) -> Rows:
        return self.energy.rows() + [("generated / reference",
                                      f"{self['n_gen']} / {self['n_ref']}"),
                                     *([self.scored.row()] if self.scored else [])]

    def left_out(self):
        return [("left out", self["errors"])]


@dataclass(frozen=True)
class CoverageScores:
    """COV-R and COV-P with the dataset and cutoffs behind them, and the structures whose
    fingerprint failed (records named 'gen:...' or 'ref:...')."""

    cov_recall: float
    cov_precision: float
    dataset: str
    struct_cutoff: float
    comp_cutoff: float
    fingerprint_errors: list[dict]

    def scores(self) -> dict:
        return {"cov_recall": self.cov_recall, "cov_precision": self.cov_precision,
                "dataset": self.dataset, "struct_cutoff": self.struct_cutoff,
                "comp_cutoff": self.comp_cutoff}

    def errors(self) -> dict:
        return {"n_fingerprint_errors": len(self.fingerprint_errors),
                "fingerprint_errors": self.fingerprint_errors}

    def rows(self) -> Rows:
        cutoffs = f"{self.dataset}: {self.struct_cutoff:g} / {self.comp_cutoff:g}"
        return [("COV-R", f"{self.cov_recall:.4f}  (all GEN, cutoffs {cutoffs})"),
                ("COV-P", f"{self.cov_precision:.4f}")]


@dataclass(frozen=True, eq=False)
class Coverage(Result):
    """CDVAE's coverage of GEN against REF (`crystal-metrics coverage`): `n_gen` structures
    counted (the valid ones with `valid_only`), `n_ref` fingerprinted references."""

    gen: StructureSet
    ref: StructureSet
    scores: CoverageScores
    valid_only: bool
    oxidation_states: str
    n_gen: int
    n_ref: int

    def _summary(self) -> dict:
        return {**self.scores.scores(), "valid_only": self.valid_only,
                "oxidation_states": self.oxidation_states, "n_gen": self.n_gen,
                "n_ref": self.n_ref,
                **_read_errors(gen_ref_records(self.gen.errors, self.ref.errors)),
                **self.scores.errors()}

    def rows(self) -> Rows:
        s, n_gen, n_ref = self.scores, self.n_gen, self.n_ref
        return [("generated structures", str(n_gen)), ("reference structures", str(n_ref)),
                ("read errors", str(self["n_read_errors"])),
                ("fingerprint errors", str(self["n_fingerprint_errors"])),
                ("cutoffs", f"structure {s.struct_cutoff:g}, composition {s.comp_cutoff:g}"),
                ("COV-R", _share(s.cov_recall, round(s.cov_recall * n_ref), n_ref)),
                ("COV-P", _share(s.cov_precision, round(s.cov_precision * n_gen), n_gen))]

    def left_out(self):
        return [("unreadable", self["read_errors"]),
                ("not fingerprinted", self.scores.fingerprint_errors)]


@dataclass(frozen=True, eq=False)
class Diversity(Result):
    """CDVAE's composition and structure diversity of the scored structures of a set
    (`crystal-metrics diversity`); `fingerprint_errors`: unlabelled records."""

    structures: StructureSet
    scored: ScoredSelection
    comp_div: float
    struct_div: float
    fingerprint_errors: list[dict] = field(default_factory=list)

    def _summary(self) -> dict:
        return {"comp_div": self.comp_div, "struct_div": self.struct_div,
                "n_structures": len(self.structures), **self.scored.fields(),
                **_read_errors(records(self.structures.errors)),
                "n_fingerprint_errors": len(self.fingerprint_errors),
                "fingerprint_errors": self.fingerprint_errors}

    def rows(self) -> Rows:
        return [("structures", str(len(self.structures))),
                ("read errors", str(len(self.structures.errors))),
                ("fingerprint errors", str(len(self.fingerprint_errors))),
                self.scored.row("scored"), ("composition diversity", f"{self.comp_div:.4f}"),
                ("structure diversity", f"{self.struct_div:.4f}")]

    def left_out(self):
        return [("unreadable", self["read_errors"]),
                ("not fingerprinted", self.fingerprint_errors)]


@dataclass(frozen=True)
class SpaceGroupDistributions:
    """Space groups of the scored GEN structures and of REF (None without REF's structures),
    with the names of the structures they were found for."""

    gen: SpaceGroups
    ref: SpaceGroups | None
    gen_names: list[str]
    ref_names: list[str] | None = None

    def fields(self) -> dict:
        """The tolerances, `gen` and `ref` summaries, the two total variation distances (None
        without REF or without any space group on a side) and `errors` ('gen:...', 'ref:...')."""
        gen, ref = self.gen, self.ref
        errors = records(failures_at(self.gen_names, gen.failures), "gen")
        if ref is not None:
            errors += records(failures_at(self.ref_names, ref.failures), "ref")
        comparison = (space_group_comparison(gen, ref) if ref is not None
                      else {"crystal_system_tv": None, "space_group_tv": None})
        return {"symprec": gen.symprec, "angle_tolerance": gen.angle_tolerance,
                "gen": gen.summary(), "ref": None if ref is None else ref.summary(),
                **comparison, "errors": errors}

    def distance_rows(self) -> Rows:
        """Distances between the crystal-system and space-group distributions of GEN and REF."""
        fields = self.fields()
        tolerances = f"symprec {fields['symprec']:g} Å, angle {fields['angle_tolerance']:g}°"
        return [("crystal-system TV", _number(fields["crystal_system_tv"])),
                ("space-group TV", f"{_number(fields['space_group_tv'])}  ({tolerances})")]


@dataclass(frozen=True, eq=False)
class Symmetry(Result):
    """Space-group and crystal-system distributions of the scored GEN structures and of REF
    (`crystal-metrics symmetry`)."""

    gen: StructureSet
    ref: StructureSet | None
    scored: ScoredSelection
    space_groups: SpaceGroupDistributions

    def _summary(self) -> dict:
        errors = gen_ref_records(self.gen.errors, [] if self.ref is None else self.ref.errors)
        return {"n_gen": len(self.gen), "n_ref": None if self.ref is None else len(self.ref),
                **self.scored.fields(), **_read_errors(errors),
                **self.space_groups.fields()}

    def rows(self) -> Rows:
        rows = [self.scored.row(), ("read errors", str(self["n_read_errors"])),
                ("no space group", str(len(self["errors"])))]
        sides = [("GEN", self["gen"])] + ([] if self.ref is None else [("REF", self["ref"])])
        for system in CRYSTAL_SYSTEMS:
            rows.append((system, "  ".join(f"{label} {side['crystal_systems'][system]:.4f}"
                                           for label, side in sides)))
        for label, side in sides:
            common = list(side["space_groups"].items())[:5]
            rows.append((f"commonest ({label})", ", ".join(f"{n}: {f:.3f}" for n, f in common)))
        if self.ref is not None:
            rows += self.space_groups.distance_rows()
        return rows

    def left_out(self):
        return [("unreadable", self["read_errors"]), ("no space group for", self["errors"])]


@dataclass(frozen=True)
class EvaluationScores:
    """The set-level numbers of an evaluation: the protocol, the scored GEN structures, the
    EMDs (density in g/cm³), the energy EMD, FAD and KID, and coverage and diversity when the
    protocol asked for them."""

    protocol: Protocol
    scored: ScoredSelection
    density_emd: float
    n_elements_emd: float
    energy: EnergyScores
    features: FeatureScores
    coverage: CoverageScores | None = None
    diversity: dict | None = None


@dataclass(frozen=True, eq=False)
class Evaluation(Result):
    """Result of `evaluate`: the GEN structures, their features and validity, REF's features,
    the space groups and the set-level numbers (`scores`; None in an evaluation assembled by
    hand for the report's figures, which need only the per-structure data).

    `features` holds the embedded GEN structures only, `embedded` their positions in
    `structures` (None: all); `scored` the positions of the GEN structures the distribution
    metrics scored (None: all), always embedded ones. `reference_min_distance`: the shortest
    interatomic distance (Å) of each REF structure (None: REF is a statistics file)."""

    structures: StructureSet
    features: FeatureSet
    validity: ValidityResult
    reference: FeatureSet
    embedded: np.ndarray | None = None
    scored: np.ndarray | None = None
    space_groups: SpaceGroupDistributions | None = None
    scores: EvaluationScores | None = None
    reference_min_distance: np.ndarray | None = None

    def _summary(self) -> dict:
        s, v = self.scores, self.validity
        return {"n_structures": len(self.structures),
                **_read_errors(gen_ref_records(self.structures.errors, self.reference.errors)),
                "n_valid": v.n_valid, "validity": v.fractions(),
                "oxidation_states": v.oxidation_states, "protocol": s.protocol.as_dict(),
                **s.scored.fields(), "density_emd": s.density_emd,
                "n_elements_emd": s.n_elements_emd, **s.energy.fields(),
                **s.features.summary(), **(s.coverage.scores() if s.coverage else {}),
                **(s.coverage.errors() if s.coverage else {}), **(s.diversity or {}),
                "space_groups": self.space_groups.fields()}

    def rows(self) -> Rows:
        """Validity, the protocol and the scored GEN structures, the EMDs, coverage and diversity
        when computed, space groups, FAD and KID."""
        s, v = self.scores, self.validity
        rows = _validity_rows(len(self.structures), self["n_read_errors"], v) + [
            ("oxidation states", v.oxidation_states), ("protocol", s.protocol.name),
            s.scored.row(), ("density EMD (g/cm³)", f"{s.density_emd:.4f}"),
            ("n-elements EMD", f"{s.n_elements_emd:.4f}")] + s.energy.rows()
        if s.coverage:
            rows += s.coverage.rows()
        if s.diversity:
            rows += [("composition diversity", f"{s.diversity['comp_div']:.4f}"),
                     ("structure diversity", f"{s.diversity['struct_div']:.4f}")]
        return rows + self.space_groups.distance_rows() + s.features.rows()

    def left_out(self):
        fields = self._fields
        return [("unreadable", fields["read_errors"]), ("not embedded", fields["not_embedded"]),
                ("no energy for", fields.get("energy_errors", [])),
                ("not fingerprinted", fields.get("fingerprint_errors", [])),
                ("no space group for", fields["space_groups"]["errors"])]

    @property
    def energy_model(self) -> dict | None:
        """The energy model behind the energies (`describe()` of CDVAE's), None for the ALIGNN
        extractor's formation energy."""
        return None if self.scores is None else self.scores.energy.model

    def _rows_of(self, positions: np.ndarray) -> np.ndarray:
        """Rows of `features` of the GEN structures at `positions` (embedded ones)."""
        return positions if self.embedded is None else np.searchsorted(self.embedded, positions)

    def _per_structure(self, values: np.ndarray) -> np.ndarray:
        """GEN feature-set values spread over all GEN structures, NaN where not embedded."""
        full = np.full(len(self.structures), np.nan)
        full[slice(None) if self.embedded is None else self.embedded] = values
        return full

    @property
    def energies(self) -> np.ndarray:
        """Energy of each GEN structure, shape (n,): the extractor's formation energy (eV/atom),
        or the energy model's property (only of the scored structures); NaN if not embedded or
        the model failed."""
        return self._per_structure(self.features.energies)

    @property
    def densities(self) -> np.ndarray:
        """Density (g/cm³) of each GEN structure, shape (n,); NaN if not embedded."""
        return self._per_structure(self.features.densities)

    @property
    def scored_features(self) -> FeatureSet:
        """GEN's features restricted to the scored structures."""
        if self.scored is None:
            return self.features
        return self.features.take(self._rows_of(self.scored))

    def per_structure(self) -> list[dict]:
        """One CSV row per GEN structure (PER_STRUCTURE_COLUMNS: validity, density, energy,
        whether the EMDs scored it), then one per read error."""
        return per_structure_rows(self.structures, self.validity, self.energies, self.scored)


@dataclass(frozen=True)
class CacheContents:
    """What the cache folder holds: weight files [(path below `root`, sha256, MiB)] and the
    number of structures cached per kind and key [(kind, key, count)]."""

    root: Path
    weights: list[tuple[Path, str, float]]
    cached: list[tuple[str, str, int]]

    def lines(self) -> list[str]:
        lines = [f"cache folder: {self.root}  (set CRYSTAL_METRICS_CACHE to move it)"]
        lines += [f"  weights {path}  sha256 {sha256[:12]}  {size:.1f} MiB"
                  for path, sha256, size in self.weights]
        if not self.weights:
            lines.append("  no weights cached: the first FAD fetches ALIGNN-FF (or run with "
                         "--fetch)")
        return lines + [f"  {kind} {key}: {count} structures" for kind, key, count in self.cached]


@dataclass
class ReferenceList:
    """The shipped reference sets (`crystal-metrics references`): each one's files
    [(path, bytes, sha256)], and the package data's size against its budget."""

    references: list
    files: dict[str, list[tuple[Path, int, str]]]
    budget: int

    def lines(self) -> list[str]:
        lines = []
        for ref in self.references:
            lines.append(f"{ref.name}  {ref.n:,} structures  (dataset {ref.dataset}, "
                         f"{ref.split})  {ref.source}")
            lines += [f"  {path}  {size / 1e6:.2f} MB  sha256 {sha256}"
                      for path, size, sha256 in self.files[ref.name]]
        total = sum(size for files in self.files.values() for _, size, _ in files)
        last = (f"package data {total / 1e6:.2f} MB (budget {self.budget / 1e6:.0f} MB); "
                "statistics of ALIGNN-FF, default graph; a name works wherever a path is accepted")
        return [*lines, last]
