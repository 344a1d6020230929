"""Uniqueness of a generated set and its novelty against a training set, as MatterGen defines them.

Two structures are the same crystal when pymatgen's `StructureMatcher` with MatterGen's settings
says so: ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True,
attempt_supercell=False, allow_subset=False (pymatgen's defaults; `OrderedStructureMatcher` in
microsoft/mattergen, mattergen/evaluation/utils/structure_matcher.py). MatterGen's default,
`DisorderedStructureMatcher`, also lets alloy-like elements substitute for each other; this is
the ordered one, for ordered structures.

Uniqueness: the structures fall into classes in input order, each joining the class of the
earliest representative that matches it (the greedy loop of `StructureMatcher.group_structures`
and of MatterGen's `get_unique`); uniqueness = classes / structures. Novelty: fraction of
structures that match no training structure. A structure pymatgen cannot reduce or compare
matches nothing and is reported.

Only structures of the same reduced composition are compared (MatterGen groups by reduced
formula too), and, as no supercells are attempted, only those whose primitive cells have as many
sites. Each structure is reduced (Niggli, then primitive cell, as `group_structures` does) once,
and only when another structure (of either set) shares its composition; composition groups are
spread over the workers.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..failures import StructureFailure
from ..io import StructureSet
from ..parallel import parallel_map

TOLERANCES = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5, "primitive_cell": True, "scale": True,
              "attempt_supercell": False, "allow_subset": False}
#: Below this many composition groups to compare, work stays in this process.
PARALLEL_MIN_GROUPS = 16
Failures = list[tuple[int, str]]  # (index in the group, reason)


@dataclass(frozen=True)
class UniquenessResult:
    """Classes of equal structures within a set and, with a training set, its matches there.

    Attributes:
        representative: (n,) int64 index of the first structure of each structure's class
            (itself when unique).
        train_match: (n,) int64 index of a matching training structure, -1 when novel; None
            without a training set.
        errors: structures pymatgen could not reduce or compare, named as in the set.
        train_errors: the same for training structures.
    """

    representative: np.ndarray
    train_match: np.ndarray | None
    errors: list[StructureFailure]
    train_errors: list[StructureFailure]

    @property
    def unique(self) -> np.ndarray:
        """(n,) bool: the first structure of its class."""
        return self.representative == np.arange(len(self.representative))

    @property
    def novel(self) -> np.ndarray | None:
        """(n,) bool: no training structure matches (None without a training set)."""
        return None if self.train_match is None else self.train_match < 0

    def summary(self) -> dict:
        """Counts and fractions in [0, 1] of unique, novel and unique-and-novel structures."""
        n = len(self.representative)

        def fraction(mask):
            return float(mask.mean()) if n else None

        fields = {"n_unique": int(self.unique.sum()), "uniqueness": fraction(self.unique)}
        if self.novel is not None:
            both = self.unique & self.novel
            fields.update(n_novel=int(self.novel.sum()), novelty=fraction(self.novel),
                          n_unique_novel=int(both.sum()), unique_novel=fraction(both))
        return fields


def uniqueness(structures: StructureSet, *, workers: int | None = None,
               progress: bool | None = None) -> UniquenessResult:
    """Classes of equal structures in `structures` (see module doc)."""
    return _compare(structures, None, workers, progress)


def novelty(structures: StructureSet, train: StructureSet, *, workers: int | None = None,
            progress: bool | None = None) -> UniquenessResult:
    """Classes of equal structures in `structures` and their matches in `train`."""
    return _compare(structures, train, workers, progress)


def _compare(gen: StructureSet, train: StructureSet | None, workers: int | None,
             progress: bool | None) -> UniquenessResult:
    gen_groups = _composition_groups(gen)
    train_groups = _composition_groups(train) if train is not None else {}
    keys = [key for key, members in gen_groups.items()
            if len(members) > 1 or key in train_groups]

    def cost(key):  # comparisons: group size times (group + training group) size
        return len(gen_groups[key]) * (len(gen_groups[key]) + len(train_groups.get(key, ())))

    keys.sort(key=cost, reverse=True)  # costly groups first, so they spread over the workers
    tasks = [([gen.crystals[i] for i in gen_groups[key]],
              [train.crystals[i] for i in train_groups.get(key, ())]) for key in keys]
    results = parallel_map(compare_group, tasks, workers=workers, min_items=PARALLEL_MIN_GROUPS,
                           progress=progress, desc="comparing", unit="group")
    representative = np.arange(len(gen))
    train_match = None if train is None else np.full(len(gen), -1, dtype=np.int64)
    errors, train_errors = [], []
    for key, (first, matches, failures, train_failures) in zip(keys, results):
        members = np.array(gen_groups[key])
        train_members = np.array(train_groups.get(key, []), dtype=np.int64)
        representative[members] = members[first]
        if train_match is not None:
            matches = np.array(matches, dtype=np.int64)
            train_match[members[matches >= 0]] = train_members[matches[matches >= 0]]
        errors += [StructureFailure(gen.names[members[i]], reason) for i, reason in failures]
        train_errors += [StructureFailure(train.names[train_members[i]], reason)
                         for i, reason in train_failures]
    return UniquenessResult(representative, train_match, errors, train_errors)


def _composition_groups(structures: StructureSet) -> dict[tuple, list[int]]:
    groups = defaultdict(list)
    for i, crystal in enumerate(structures.crystals):
        groups[crystal.reduced_composition()].append(i)
    return groups


def compare_group(task) -> tuple[list[int], list[int], Failures, Failures]:
    """Compare structures of one composition among themselves and with training structures.

    `task`: (crystals, training crystals). Returns, per crystal, the index of its class's first
    crystal and of its first matching training crystal (-1: none), then the (index, reason)
    failures of both lists.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    crystals, train = task
    matcher = StructureMatcher(**TOLERANCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced, failures = _reduce_all(crystals)
        train_reduced, train_failures = _reduce_all(train)
        first = list(range(len(crystals)))
        matches = [-1] * len(crystals)
        representatives: list[int] = []
        for i, structure in enumerate(reduced):
            if structure is None:
                continue
            earlier = _first_match(matcher, [reduced[r] for r in representatives], structure)
            if isinstance(earlier, str):
                failures.append((i, earlier))
            elif earlier >= 0:
                first[i] = representatives[earlier]
            else:
                representatives.append(i)
            in_train = _first_match(matcher, train_reduced, structure)
            if isinstance(in_train, str):
                failures.append((i, in_train))
            else:
                matches[i] = in_train
    return first, matches, failures, train_failures


def _reduce_all(crystals) -> tuple[list, list[tuple[int, str]]]:
    """Niggli-reduced primitive cells (None where pymatgen fails) and the failures."""
    reduced, failures = [], []
    for i, crystal in enumerate(crystals):
        try:
            structure = crystal.to_pymatgen().get_reduced_structure()
            reduced.append(structure.get_primitive_structure())
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types on degenerate cells
            reduced.append(None)
            failures.append((i, f"cannot reduce to a primitive cell: {type(exc).__name__}: {exc}"))
    return reduced, failures


def _first_match(matcher, candidates: list, structure) -> int | str:
    """Index of the first candidate (reduced structure or None) matching `structure`, -1 if none,
    or the reason when pymatgen raises."""
    for j, candidate in enumerate(candidates):
        if candidate is None or len(candidate) != len(structure):
            continue
        try:
            if matcher.fit(candidate, structure, skip_structure_reduction=True):
                return j
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types on degenerate cells
            return f"StructureMatcher failed: {type(exc).__name__}: {exc}"
    return -1
