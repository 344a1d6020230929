"""ALIGNN crystal graphs and line graphs, built exactly as at training time.

The neighbour rule is jarvis-tools / alignn ``nearest_neighbor_edges``
(``neighbor_strategy="k-nearest"``), re-implemented without Python loops over
atoms: a k-d tree of the sites of every image cell finds the pairs, a group of
centres at a time (memory grows linearly with the number of atoms), and their
distances are then computed as jarvis-tools does:

* candidates: every periodic image ``j + n`` of every site with
  ``0.15 Å < |x_j + n·L - x_i| <= cutoff`` (jarvis ``Atoms.get_all_neighbors``,
  ``bond_tol=0.15``), where the image box is
  ``ceil((cutoff + 0.15) * |b_k| / 2π)`` cells around the fractional range of
  the sites (``|b_k|`` rounded to 6 decimals, as jarvis does), coordinates
  first wrapped into [0, 1) (the box assumes it: unwrapped input, e.g. from
  an MD trajectory, would lose neighbours);
* if any site has fewer than ``max_neighbors`` candidates the cutoff becomes
  ``max(a, b, c)`` (or ``2 * cutoff`` when already larger) and the search is
  repeated;
* site ``i`` keeps every candidate whose distance is ``<=`` the distance of
  its ``max_neighbors``-th nearest candidate (whole shells at the boundary);
* ``use_canonize=False`` (ALIGNN-FF): each kept ``(i, j, n)`` becomes the two
  directed edges ``i->j`` (vector ``r``) and ``j->i`` (``-r``), so bonds found
  from both ends appear twice, as in training;
  ``use_canonize=True`` (classic property models): ``(i, j, n)`` and
  ``(j, i, -n)`` are merged before doubling.

Distances are computed with the same floating-point operation order as
jarvis-tools, so shell ties resolve identically. Bond vectors are
``(f_j + n - f_i) @ L`` in float64, cast to float32 (Å).

The line graph is DGL's ``line_graph(backtracking=True)``: one node per
directed edge and an edge ``a -> b`` whenever ``dst(a) == src(b)``; its
feature is the bond-angle cosine ``-r_a·r_b / (|r_a||r_b|)`` clamped to [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from crystal_metrics.crystal import Crystal
from crystal_metrics.errors import StructureError

BOND_TOL = 0.15  # Å, jarvis-tools get_all_neighbors default
_MAX_PAIRS_PER_CHUNK = 2_000_000
#: With shell_tol > 0, a cell whose image box exceeds this is searched in an LLL-reduced basis
#: (a few hundred suffice for typical cells; a skewed basis of the same cell can need millions).
REDUCE_ABOVE_IMAGES = 4096


def _lattice_lengths_rounded(mat: np.ndarray) -> list[float]:
    """Row lengths rounded to 6 decimals (jarvis ``Lattice.lat_lengths``)."""
    return [round(x, 6) for x in np.sqrt(np.sum(mat**2, axis=1)).tolist()]


def _image_offsets(images: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Cartesian offsets ``n @ L`` summed term by term (no BLAS, no FMA)."""
    return (
        images[:, 0:1] * lat[0] + images[:, 1:2] * lat[1]
    ) + images[:, 2:3] * lat[2]


def _image_box(lat_r: np.ndarray, frac: np.ndarray, r: float) -> list[np.ndarray]:
    """Image indices searched along each lattice vector for a search radius r (Å)."""
    recp = np.around(2 * np.pi * np.linalg.inv(lat_r).T, 5)
    recp_len = np.array(_lattice_lengths_rounded(recp))
    maxr = np.ceil((r + BOND_TOL) * recp_len / (2 * math.pi))
    nmin = np.floor(np.min(frac, axis=0)) - maxr
    nmax = np.ceil(np.max(frac, axis=0)) + maxr
    return [np.arange(x, y) for x, y in zip(nmin, nmax)]


def _lll_basis(lat: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same crystal in an LLL-reduced basis: rows M @ lat, coordinates frac @ M⁻¹ (mod 1)."""
    from pymatgen.core import Lattice

    m = np.rint(Lattice(lat).get_lll_reduced_lattice().matrix @ np.linalg.inv(lat))
    return m @ lat, np.mod(frac @ np.linalg.inv(m), 1.0)


def _search_points(lat: np.ndarray, lat_r: np.ndarray, frac: np.ndarray, cart: np.ndarray,
                   r: float) -> tuple[np.ndarray, cKDTree]:
    """Every site in every image cell of the search box (``n @ L + x_j``, image-major), and a
    k-d tree of them."""
    images = np.stack(np.meshgrid(*_image_box(lat_r, frac, r), indexing="ij"), -1).reshape(-1, 3)
    points = (_image_offsets(images, lat)[:, None, :] + cart[None, :, :]).reshape(-1, 3)
    return images, cKDTree(points)


def _centre_chunks(tree: cKDTree, cart: np.ndarray, r: float) -> list[np.ndarray]:
    """Consecutive centres grouped by about ``_MAX_PAIRS_PER_CHUNK`` candidates per group."""
    counts = tree.query_ball_point(cart, r * (1 + 1e-9) + 1e-9, return_length=True)
    group = np.cumsum(counts) // _MAX_PAIRS_PER_CHUNK
    return np.split(np.arange(len(cart)), np.flatnonzero(np.diff(group)) + 1)


def _candidates(
    images: np.ndarray,
    tree: cKDTree,
    cart: np.ndarray,
    centres: np.ndarray,
    r: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (centre i, neighbour j, image index m, distance d) with 0.15 < d <= r, i in ``centres``.

    The k-d tree finds the pairs; their distances are then computed as jarvis-tools does
    (``((n @ L + x_j) - x_i) ** 2`` summed, square root), so ties resolve identically.
    """
    margin = r * (1 + 1e-9) + 1e-9  # the tree's rounding differs: search a little wider
    pairs = cKDTree(cart[centres]).sparse_distance_matrix(tree, margin, output_type="ndarray")
    i, p = centres[pairs["i"]], pairs["j"].astype(np.int64)
    d = np.sum((tree.data[p] - cart[i]) ** 2, axis=-1) ** 0.5
    ok = (d <= r) & (d > 1e-8) & (d > BOND_TOL)
    m, j = np.divmod(p[ok], len(cart))
    return i[ok], j, m, d[ok]


def _nearest_shells(
    images: np.ndarray,
    tree: cKDTree,
    cart: np.ndarray,
    r: float,
    max_neighbors: int,
    shell_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per centre, the candidates within ``shell_tol`` of its ``max_neighbors``-th nearest,
    as (i, j, image) in jarvis-tools' order (image, then j, then i); None when some centre
    has fewer than ``max_neighbors`` candidates within r. Memory is bounded by searching the
    centres a group at a time."""
    kept = []
    for centres in _centre_chunks(tree, cart, r):
        ci, cj, cm, cd = _candidates(images, tree, cart, centres, r)
        counts = np.bincount(ci - centres[0], minlength=len(centres))
        if counts.min() < max_neighbors:
            return None
        order = np.lexsort((cd, ci))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        kth = cd[order[starts + max_neighbors - 1]]
        keep = cd <= kth[ci - centres[0]] + shell_tol
        kept.append((ci[keep], cj[keep], cm[keep]))
    ci, cj, cm = (np.concatenate(a) for a in zip(*kept))
    order = np.lexsort((ci, cj, cm))
    return ci[order], cj[order], images[cm[order]]


def knn_edges(
    lattice: np.ndarray,
    frac_coords: np.ndarray,
    cutoff: float = 8.0,
    max_neighbors: int = 12,
    use_canonize: bool = False,
    merge_duplicates: bool = False,
    shell_tol: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed k-nearest edges of one periodic structure.

    Args:
        lattice: (3, 3) lattice vectors as rows, Å.
        frac_coords: (N, 3) fractional coordinates.
        cutoff: initial search radius, Å.
        max_neighbors: k.
        use_canonize: merge ``(i, j, n)`` with ``(j, i, -n)`` (see module doc).
        merge_duplicates: return each distinct directed edge (src, dst, image)
            once with its multiplicity instead of repeating it.
        shell_tol: Å; keep candidates with ``d <= d_k + shell_tol``. 0 is
            jarvis-tools bit for bit, where members of a symmetric shell at
            the k-th distance are kept or dropped by floating-point noise
            (so the graph changes under rotation / origin shift /
            supercell); a small positive value keeps the whole shell, the
            exact-arithmetic meaning of the rule, and lets a skewed cell be
            searched in a reduced basis (REDUCE_ABOVE_IMAGES).

    Returns:
        ``src`` (E,) int64, ``dst`` (E,) int64, ``r`` (E, 3) float64 bond
        vectors from src to dst (Å), ``mult`` (E,) int64 multiplicities (all 1
        unless ``merge_duplicates``).
    """
    lat = np.asarray(lattice, dtype=np.float64)
    # into [0, 1) (exact for coordinates already there): the image box below assumes it
    frac = np.mod(np.asarray(frac_coords, dtype=np.float64), 1.0)
    # jarvis ``Lattice`` rounds the matrix to 5 decimals; site coordinates,
    # the reciprocal box and the bond vectors use the rounded matrix while
    # the image offsets of ``get_all_neighbors`` use the raw one.
    lat_r = np.around(lat, decimals=5)
    if shell_tol > 0 and math.prod(map(len, _image_box(lat_r, frac, cutoff))) > REDUCE_ABOVE_IMAGES:
        # a skewed basis: search in a reduced one (same bonds, far fewer images)
        lat, frac = _lll_basis(lat, frac)
        lat_r = np.around(lat, decimals=5)
    cart = np.dot(frac, lat_r)
    r = float(cutoff)
    for _ in range(64):
        images, tree = _search_points(lat, lat_r, frac, cart, r)
        found = _nearest_shells(images, tree, cart, r, max_neighbors, shell_tol)
        if found is not None:
            break
        longest = max(_lattice_lengths_rounded(lat_r))
        r = longest if r < longest else 2 * r
    else:  # pragma: no cover - needs a pathological lattice
        raise ValueError("k-nearest neighbour search did not converge")
    ci, cj, cimg = found

    if use_canonize:
        swap = cj < ci
        a = np.where(swap, cj, ci)
        b = np.where(swap, ci, cj)
        img = np.where(swap[:, None], -cimg, cimg) + 0.0  # -0.0 -> 0.0
        key = np.concatenate([a[:, None], b[:, None], img], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        first.sort()
        ci, cj, cimg = a[first], b[first], img[first]

    d = frac[cj] + cimg - frac[ci]
    vec = np.dot(d, lat_r)
    src = np.stack([ci, cj], 1).reshape(-1).astype(np.int64)
    dst = np.stack([cj, ci], 1).reshape(-1).astype(np.int64)
    rr = np.stack([vec, -vec], 1).reshape(-1, 3)
    if not merge_duplicates:
        return src, dst, rr, np.ones(len(src), dtype=np.int64)
    img = np.rint(cimg).astype(np.int64)
    img = np.stack([img, -img], 1).reshape(-1, 3)
    key = np.concatenate([src[:, None], dst[:, None], img], axis=1)
    _, first, mult = np.unique(key, axis=0, return_index=True, return_counts=True)
    return src[first], dst[first], rr[first], mult.astype(np.int64)


def line_graph_edges(
    src: torch.Tensor, dst: torch.Tensor, num_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Line-graph edges (a, b) for all directed edges with dst[a] == src[b].

    Same edge set as DGL ``line_graph(backtracking=True)``.
    Returns two (T,) int64 tensors of edge indices.
    """
    order = torch.argsort(src, stable=True)
    out_deg = torch.bincount(src, minlength=num_nodes)
    first = torch.cumsum(out_deg, 0) - out_deg
    counts = out_deg[dst]
    total = int(counts.sum())
    lg_src = torch.repeat_interleave(torch.arange(len(src)), counts)
    row_start = torch.cumsum(counts, 0) - counts
    offs = torch.arange(total) - torch.repeat_interleave(row_start, counts)
    lg_dst = order[torch.repeat_interleave(first[dst], counts) + offs]
    return lg_src, lg_dst


@dataclass
class GraphBatch:
    """A batch of crystal graphs with their line graphs (all tensors).

    Attributes:
        atom_features: (N_atoms, F) float32 node inputs.
        src, dst: (E,) int64 directed edges into the atom rows.
        r: (E, 3) float32 bond vectors, Å.
        lg_src, lg_dst: (T,) int64 line-graph edges into the edge rows.
        edge_weight: (E, 1) float32 multiplicity of each directed edge in the
            training multigraph, or None when all are 1.
        lg_weight: (T, 1) float32 multiplicity of each line-graph edge
            (= that of its source edge), or None.
        graph_id: (N_atoms,) int64 structure index of every atom.
        num_graphs: number of structures B.
        num_atoms: (B,) int64.
    """

    atom_features: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    r: torch.Tensor
    lg_src: torch.Tensor
    lg_dst: torch.Tensor
    graph_id: torch.Tensor
    num_graphs: int
    num_atoms: torch.Tensor
    edge_weight: torch.Tensor | None = None
    lg_weight: torch.Tensor | None = None

    def to(self, device) -> GraphBatch:
        """Copy all tensors to ``device``."""
        kw = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else v)
            for k, v in self.__dict__.items()
        }
        return GraphBatch(**kw)


def crystal_arrays(structure, k: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice (3, 3) Å, fractional coordinates (N, 3), atomic numbers (N,)) of a `Crystal`, or
    of an ordered pymatgen ``Structure`` (its arrays as stored); ``k`` numbers it in errors."""
    if isinstance(structure, Crystal):
        return structure.lattice, structure.frac_coords, structure.numbers
    if not structure.is_ordered:
        raise StructureError(
            f"Structure {k} ({structure.composition.reduced_formula}) has partial "
            "occupancies; ALIGNN needs an ordered structure."
        )
    return (structure.lattice.matrix, structure.frac_coords,
            np.asarray(structure.atomic_numbers, dtype=np.int64))


def build_batch(
    structures: Sequence,
    feature_table: np.ndarray,
    cutoff: float = 8.0,
    max_neighbors: int = 12,
    use_canonize: bool = False,
    merge_duplicates: bool = True,
    shell_tol: float = 0.0,
) -> GraphBatch:
    """Batch graphs + line graphs of ``Crystal`` objects (or ordered pymatgen ``Structure``
    objects, whose arrays are used as stored).

    With ``merge_duplicates`` (default) repeated directed edges of the
    training multigraph are stored once with a multiplicity weight; the
    network output is mathematically identical (copies of an edge carry equal
    features at every layer) and the line graph shrinks up to 4x.

    Args:
        structures: sequence of ``Crystal`` (or ordered pymatgen Structures).
        feature_table: (Zmax+1, F) node-feature table indexed by atomic number.
        cutoff, max_neighbors, use_canonize: graph settings from the model config.
        merge_duplicates, shell_tol: see ``knn_edges``.
    """
    srcs, dsts, rs, zs, nat, ws = [], [], [], [], [], []
    atom_off = 0
    for k, structure in enumerate(structures):
        lattice, frac_coords, numbers = crystal_arrays(structure, k)
        lat = np.array(lattice, dtype=np.float64)
        if not (np.isfinite(lat).all() and abs(np.linalg.det(lat)) > 1e-6):
            raise StructureError(f"Structure {k} has a singular or non-finite lattice.")
        if len(numbers) == 0:
            raise StructureError(f"Structure {k} has no atoms.")
        frac = np.array(frac_coords, dtype=np.float64)
        if not np.isfinite(frac).all():
            raise StructureError(f"Structure {k} has non-finite coordinates.")
        u, v, r, w = knn_edges(
            lat, frac, cutoff, max_neighbors, use_canonize, merge_duplicates, shell_tol
        )
        ws.append(w)
        srcs.append(u + atom_off)
        dsts.append(v + atom_off)
        rs.append(r)
        zs.append(np.asarray(numbers, dtype=np.int64))
        nat.append(len(frac))
        atom_off += len(frac)
    src = torch.from_numpy(np.concatenate(srcs))
    dst = torch.from_numpy(np.concatenate(dsts))
    r = torch.from_numpy(np.concatenate(rs)).to(torch.float32)
    z = np.concatenate(zs)
    feats = torch.from_numpy(np.ascontiguousarray(feature_table[z], dtype=np.float32))
    lg_src, lg_dst = line_graph_edges(src, dst, atom_off)
    num_atoms = torch.tensor(nat, dtype=torch.int64)
    graph_id = torch.repeat_interleave(torch.arange(len(nat)), num_atoms)
    mult = np.concatenate(ws)
    ew = lw = None
    if (mult != 1).any():
        ew = torch.from_numpy(mult.astype(np.float32)).unsqueeze(1)
        lw = ew.index_select(0, lg_src)
    return GraphBatch(feats, src, dst, r, lg_src, lg_dst, graph_id, len(nat), num_atoms, ew, lw)
