"""Periodic k-nearest-neighbour graph, vectorised over atoms, images and structures.

The k nearest neighbours are searched in the whole periodic point cloud (eq. 1), not among a
fixed set of images, so the graph depends only on the lattice as a set of points: it is
invariant under a unimodular change of basis (SL3(Z)), rotation, translation and permutation.
The basis is first size-reduced (``geometry.lll_reduce``) to keep the image box small, and the
search radius grows until the (k+1)-th neighbour of every atom is provably inside it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .geometry import lll_reduce, min_image

#: Largest image range searched per axis (beyond this the cell is degenerate).
MAX_IMAGE_RANGE = 8
#: Candidate (atom, neighbour image) pairs held at once; atoms are processed in chunks.
CHUNK_ELEMENTS = 4_000_000


@dataclass
class Graph:
    """Dense kNN layout: every atom has exactly k neighbours.

    Attributes:
        nbr: (N, k) long, global index of neighbour j of atom i, sorted by distance.
        frac: (N, k, 3) fractional displacement x_j + tau - x_i in the *input* basis.
        cart: (N, k, 3) Cartesian edge vectors in Å.
        dist: (N, k) edge lengths in Å.
        cutoff: (N,) distance of the (k+1)-th neighbour in Å (edges are weighted by a smooth
            envelope vanishing there, so ties at the k-th neighbour cannot change the output).
    """

    nbr: torch.Tensor
    frac: torch.Tensor
    cart: torch.Tensor
    dist: torch.Tensor
    cutoff: torch.Tensor


@torch.no_grad()
def knn_graph(lattice: torch.Tensor, frac: torch.Tensor, batch: torch.Tensor,
              n_atoms: torch.Tensor, k: int = 32) -> Graph:
    """Build the periodic kNN graph.

    Args:
        lattice: (B, 3, 3) rows in Å (det != 0).
        frac: (N, 3) fractional coordinates.
        batch: (N,) structure index of every atom (atoms of a structure contiguous).
        n_atoms: (B,) atoms per structure.
        k: neighbours per atom.
    """
    dtype, device = lattice.dtype, lattice.device
    lat64 = lattice.to(torch.float64)
    red, u = lll_reduce(lat64)
    x_red = torch.einsum("ni,nij->nj", frac.to(torch.float64), torch.linalg.inv(u)[batch])
    volume = torch.linalg.det(red).abs()
    cross = torch.stack([torch.linalg.cross(red[:, 1], red[:, 2]),
                         torch.linalg.cross(red[:, 2], red[:, 0]),
                         torch.linalg.cross(red[:, 0], red[:, 1])], 1)
    heights = volume[:, None] / cross.norm(dim=-1)                       # (B, 3) Å
    radius = 1.3 * (3 * (k + 1) * volume / (4 * math.pi * n_atoms.to(torch.float64))) ** (1 / 3)
    start = torch.cumsum(n_atoms, 0) - n_atoms                            # (B,)
    local = torch.arange(len(batch), device=device) - start[batch]       # (N,)
    for _ in range(12):
        ranges = torch.ceil(radius[:, None] / heights - 0.5).clamp(0, MAX_IMAGE_RANGE).long()
        covered = ((ranges + 0.5) * heights).min(-1).values              # (B,) Å
        widths = 2 * ranges + 1
        n_images = widths.prod(-1)                                        # (B,)
        c_max = int((n_atoms * n_images).max())                           # candidates per atom
        if c_max < k + 1:
            radius = radius * 1.5
            continue
        rows = max(1, CHUNK_ELEMENTS // c_max)                            # bound peak memory
        parts = [_nearest(torch.arange(i, min(i + rows, len(batch)), device=device), k, c_max,
                          batch, start, local, n_atoms, n_images, widths, ranges, x_red, red)
                 for i in range(0, len(batch), rows)]
        top = torch.cat([p[0] for p in parts])
        nbr = torch.cat([p[1] for p in parts])
        cart_k = torch.cat([p[2] for p in parts])
        # exact when the (k+1)-th neighbour lies within the provably searched radius
        worst = torch.zeros_like(radius).scatter_reduce(0, batch, top[:, k], "amax",
                                                       include_self=False)  # (B,) Å
        ok = worst <= covered
        at_max = (ranges == MAX_IMAGE_RANGE).all(-1)
        if bool((ok | at_max).all()):
            break
        radius = torch.where(ok, radius, torch.maximum(radius * 1.5, worst * 1.05))
    nbr, cart_k = nbr[:, :k], cart_k[:, :k]
    frac_k = torch.einsum("nkj,njl->nkl", cart_k, torch.linalg.inv(lat64)[batch])
    return Graph(nbr=nbr, frac=frac_k.to(dtype), cart=cart_k.to(dtype), dist=top[:, :k].to(dtype),
                 cutoff=top[:, k].to(dtype))


def _nearest(rows, k, c_max, batch, start, local, n_atoms, n_images, widths, ranges, x_red, red):
    """k+1 nearest periodic neighbours of the atoms ``rows``: (dist, global index, Cartesian)."""
    slot = torch.arange(c_max, device=rows.device)[None, :]               # (1, C)
    b = batch[rows][:, None]                                              # (R, 1)
    valid = slot < (n_atoms * n_images)[b]                                # (R, C)
    m_img = n_images[b]
    j_local = torch.where(valid, slot // m_img, 0)
    img = torch.where(valid, slot % m_img, 0)
    w = widths[b]                                                         # (R, 1, 3)
    t0 = img % w[..., 0]
    t1 = (img // w[..., 0]) % w[..., 1]
    t2 = img // (w[..., 0] * w[..., 1])
    r = ranges[b]
    tau = torch.stack([t0 - r[..., 0], t1 - r[..., 1], t2 - r[..., 2]], -1).to(torch.float64)
    j_global = start[b] + j_local                                         # (R, C)
    d_red = min_image(x_red[j_global] - x_red[rows][:, None, :]) + tau    # (R, C, 3)
    cart = torch.einsum("ncj,njk->nck", d_red, red[batch[rows]])
    dist = cart.norm(dim=-1)
    self_edge = (j_local == local[rows][:, None]) & (tau.abs().sum(-1) == 0)
    dist = torch.where(valid & ~self_edge, dist, torch.full_like(dist, math.inf))
    top, idx = torch.topk(dist, k + 1, dim=1, largest=False, sorted=True)
    return (top, torch.gather(j_global, 1, idx),
            torch.gather(cart, 1, idx[..., None].expand(-1, -1, 3)))
