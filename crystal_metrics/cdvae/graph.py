"""CDVAE's crystal graphs: CrystalNN bonds with periodic images, batched with DimeNet's triplets.

As CDVAE's `build_crystal_graph` (through `preprocess_tensors`, its evaluation path): the
structure is rebuilt from its lattice lengths and angles (pymatgen's standard orientation) with
the fractional coordinates as given, and pymatgen's `StructureGraph` of
`CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)` gives the bonds:
a bond is kept when either end names the other, once per pair of (site, image), self-bonds to an
atom's own images included. Each bond becomes two directed edges.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..crystal import Crystal


@lru_cache(maxsize=1)
def crystalnn():
    """CDVAE's CrystalNN (built once)."""
    from pymatgen.analysis.local_env import CrystalNN

    return CrystalNN(distance_cutoffs=None, x_diff_weight=-1, porous_adjustment=False)


@dataclass(frozen=True, eq=False)
class CrystalGraph:
    """One structure as the property model sees it.

    Attributes:
        numbers: (n,) int64 atomic numbers.
        source: (E,) int64 source atom j of each directed edge j -> i.
        target: (E,) int64 target atom i.
        vectors: (E, 3) float64 from atom i to the bonded image of atom j, Å.
        images: (E, 3) int64 lattice translation of that image.
    """

    numbers: np.ndarray
    source: np.ndarray
    target: np.ndarray
    vectors: np.ndarray
    images: np.ndarray


def standard_lattice(lattice: np.ndarray) -> np.ndarray:
    """The lattice with the same lengths and angles in pymatgen's `from_parameters` orientation
    (CDVAE's `lattice_params_to_matrix`), (3, 3) rows in Å."""
    from pymatgen.core import Lattice

    return Lattice.from_parameters(*Lattice(lattice).parameters).matrix


def crystalnn_bonds(crystal: Crystal, lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bonds of `StructureGraph.from_local_env_strategy(structure, crystalnn())`: rows (u, v)
    with u <= v, shape (B, 2), and the image of v, shape (B, 3); a self-bond's image has its first
    non-zero component positive. Raises whatever CrystalNN raises on an unusable geometry."""
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice(lattice), crystal.numbers, crystal.frac_coords)
    with warnings.catch_warnings():  # CrystalNN warns about missing oxidation states
        warnings.simplefilter("ignore")
        neighbours = crystalnn().get_all_nn_info(structure)
    origin = np.repeat(np.arange(len(neighbours)), [len(n) for n in neighbours])
    other = np.array([nb["site_index"] for site in neighbours for nb in site], dtype=np.int64)
    image = np.array([nb["image"] for site in neighbours for nb in site], dtype=np.int64)
    image = image.reshape(-1, 3)
    swap = other < origin
    u, v = np.where(swap, other, origin), np.where(swap, origin, other)
    image = np.where(swap[:, None], -image, image)
    nonzero = image != 0
    leading = image[np.arange(len(image)), np.argmax(nonzero, axis=1)]
    image = np.where(((u == v) & (leading < 0))[:, None], -image, image)
    keep = (u != v) | nonzero.any(axis=1)  # a bond to itself in the same cell is ignored
    rows = np.unique(np.column_stack([u, v, image])[keep], axis=0).reshape(-1, 5)
    return rows[:, :2], rows[:, 2:]


def crystal_graph(crystal: Crystal) -> CrystalGraph:
    """The CrystalNN graph of `crystal` with both directions of every bond (CDVAE's edge list:
    bond (u, v, image) gives v -> u with `image` and u -> v with -`image`)."""
    lattice = standard_lattice(crystal.lattice)
    pairs, image = crystalnn_bonds(crystal, lattice)
    source = np.concatenate([pairs[:, 1], pairs[:, 0]])
    target = np.concatenate([pairs[:, 0], pairs[:, 1]])
    images = np.concatenate([image, -image])
    positions = crystal.frac_coords @ lattice
    vectors = positions[source] - positions[target] + images @ lattice
    return CrystalGraph(crystal.numbers, source, target, vectors, images)


@dataclass(frozen=True, eq=False)
class GraphBatch:
    """Graphs of several structures as one, with DimeNet's triplets; torch tensors.

    Attributes:
        numbers: (N,) atomic numbers.
        source, target: (E,) atoms j and i of each edge j -> i.
        vectors: (E, 3) float64 edge vectors, Å.
        triplet_kj, triplet_ji: (T,) edges k -> j and j -> i of each triplet k -> j -> i, k != i.
        structure: (N,) index of each atom's structure.
        n_structures: number of structures.
    """

    numbers: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    vectors: torch.Tensor
    triplet_kj: torch.Tensor
    triplet_ji: torch.Tensor
    structure: torch.Tensor
    n_structures: int

    def to(self, device) -> GraphBatch:
        return GraphBatch(*(getattr(self, f).to(device) for f in (
            "numbers", "source", "target", "vectors", "triplet_kj", "triplet_ji", "structure")),
            self.n_structures)


def triplets(source: np.ndarray, target: np.ndarray, n_atoms: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """DimeNet's triplets k -> j -> i: for each edge j -> i, every edge k -> j whose atom k is
    not atom i (by index: in CDVAE a bond back to another image of i is left out too).
    Returns (kj, ji) edge indices, shape (T,) each, ordered by ji then by (j, k) as
    torch_sparse's CSR does."""
    by_target = np.lexsort((source, target))
    in_degree = np.bincount(target, minlength=n_atoms)
    first = np.cumsum(in_degree) - in_degree
    count = in_degree[source]
    ji = np.repeat(np.arange(len(source)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    kj = by_target[np.repeat(first[source], count) + within]
    keep = source[kj] != target[ji]
    return kj[keep], ji[keep]


def batch_graphs(graphs: list[CrystalGraph]) -> GraphBatch:
    """Concatenate `graphs` (atom indices offset per structure) and list their triplets."""
    n_atoms = np.array([len(g.numbers) for g in graphs])
    offset = np.repeat(np.cumsum(n_atoms) - n_atoms, [len(g.source) for g in graphs])
    source = np.concatenate([g.source for g in graphs]) + offset
    target = np.concatenate([g.target for g in graphs]) + offset
    kj, ji = triplets(source, target, int(n_atoms.sum()))
    return GraphBatch(
        torch.from_numpy(np.concatenate([g.numbers for g in graphs])),
        torch.from_numpy(source), torch.from_numpy(target),
        torch.from_numpy(np.concatenate([g.vectors for g in graphs]).reshape(-1, 3)),
        torch.from_numpy(kj), torch.from_numpy(ji),
        torch.from_numpy(np.repeat(np.arange(len(graphs)), n_atoms)), len(graphs))
