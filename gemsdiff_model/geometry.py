"""Crystal geometry in torch (no torch.nn): the lattice chart, the canonical cell basis, the torus.

Conventions
-----------
* ``lattice``: (..., 3, 3) tensor, **rows** are the lattice vectors a, b, c in Å (pymatgen
  convention); Cartesian positions are ``frac @ lattice``. The paper's cell matrix rho (columns
  are the vectors) is ``lattice.mT``.
* Lattice vector space (paper eqs. 12-13): the 9-d orthonormal (Frobenius) basis ``BASIS`` of
  gl3(R) = so3 (3 rotation) + traceless symmetric (5 shape) + R*I (1 volume). A cell with
  det > 0 is rho = exp(A) exp(S) (polar form, A antisymmetric, S symmetric): S = log(rho^T rho) / 2
  depends on the metric only, so its 5 shape + 1 volume coordinates (``metric_coordinates``) fix
  the lattice up to a rotation. The model diffuses these 6 coordinates and never the 3 rotation
  coordinates: the orientation of a crystal carries no information.
"""
from __future__ import annotations

import math

import torch

_S2 = 1.0 / math.sqrt(2.0)


def _basis() -> torch.Tensor:
    b = torch.zeros(9, 3, 3, dtype=torch.float64)
    # so3: rotation generators about x, y, z
    for k, (i, j) in enumerate([(1, 2), (2, 0), (0, 1)]):
        b[k, i, j], b[k, j, i] = -_S2, _S2
    # traceless symmetric: 3 off-diagonal shears + 2 diagonal
    for k, (i, j) in enumerate([(1, 2), (0, 2), (0, 1)]):
        b[3 + k, i, j] = b[3 + k, j, i] = _S2
    b[6] = torch.diag(torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)) * _S2
    b[7] = torch.diag(torch.tensor([1.0, 1.0, -2.0], dtype=torch.float64)) / math.sqrt(6.0)
    b[8] = torch.eye(3, dtype=torch.float64) / math.sqrt(3.0)
    return b


#: (9, 3, 3) float64 orthonormal basis pi of gl3(R): [so3 x3 | shape x5 | volume x1].
BASIS = _basis()
#: slices of the 9 coordinates; the 6 metric coordinates are BASIS[3:] (shape x5, volume x1)
ROTATION, SHAPE, VOLUME = slice(0, 3), slice(3, 8), slice(8, 9)


def sym_exp(s: torch.Tensor) -> torch.Tensor:
    """Exponential of symmetric (..., 3, 3) matrices via eigh."""
    lam, vec = torch.linalg.eigh(s)
    return (vec * torch.exp(lam)[..., None, :]) @ vec.mT


def spd_log(p: torch.Tensor) -> torch.Tensor:
    """Logarithm of symmetric positive definite (..., 3, 3) matrices via eigh."""
    lam, vec = torch.linalg.eigh(p)
    return (vec * torch.log(lam)[..., None, :]) @ vec.mT


def metric_coordinates(lattice: torch.Tensor) -> torch.Tensor:
    """Lattice (..., 3, 3) rows in Å -> (..., 6) coordinates of S = log(L L^T) / 2 in BASIS[3:]:
    5 shape coordinates, then log(volume / Å^3) / sqrt(3). Rotation invariant, float64."""
    lat = lattice.to(torch.float64)
    s = spd_log(lat @ lat.mT) / 2
    return torch.einsum("...ij,kij->...k", s, BASIS[3:].to(s.device))


def lattice_from_metric(coords: torch.Tensor) -> torch.Tensor:
    """Inverse of ``metric_coordinates`` up to rotation: (..., 6) -> lattice rows exp(S) (Å),
    float64 (the symmetric representative: L L^T = exp(2 S))."""
    c = coords.to(torch.float64)
    return sym_exp(torch.einsum("...k,kij->...ij", c, BASIS[3:].to(c.device)))


# ----------------------------------------------------------------------------------- torus
def wrap(x: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates into [0, 1)."""
    y = x - torch.floor(x)
    return torch.where(y >= 1.0, y - 1.0, y)  # guard round-off giving exactly 1.0


def min_image(d: torch.Tensor) -> torch.Tensor:
    """Shortest representative ``d - k*`` of a fractional displacement, k* = round(d) (eq. 20).

    Per component, in [-0.5, 0.5]; this is the k* of eq. 20 (the fractional-coordinate norm the
    paper minimises, not the Cartesian one).
    """
    return d - torch.round(d)


def lll_reduce(lattice: torch.Tensor, sweeps: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectorised pairwise (Gauss/Seysen-like) size reduction of (B, 3, 3) row lattices.

    Returns ``(reduced, u)`` with ``reduced = u @ lattice`` and ``u`` integer unimodular
    (float dtype). Not a full LLL/Niggli reduction, only used to make periodic neighbour
    searches cheap: the lattice (the set of points) is unchanged.
    """
    red = lattice.clone()
    u = torch.eye(3, dtype=lattice.dtype, device=lattice.device).expand_as(lattice).clone()
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    for _ in range(sweeps):
        changed = False
        for i, j in pairs:
            bj = red[:, j]
            q = torch.round((red[:, i] * bj).sum(-1) / (bj * bj).sum(-1))
            if bool((q != 0).any()):
                changed = True
                red[:, i] = red[:, i] - q[:, None] * bj
                u[:, i] = u[:, i] - q[:, None] * u[:, j]
        if not changed:
            break
    return red, u


def _half_space_coefficients(bound: int = 2) -> torch.Tensor:
    """Integer vectors n in [-bound, bound]^3 with first non-zero entry > 0 (one of +-n), (M, 3),
    the basis vectors (1,0,0), (0,1,0), (0,0,1) first, then by L1 norm."""
    r = torch.arange(-bound, bound + 1, dtype=torch.float64)
    n = torch.cartesian_prod(r, r, r)
    first = torch.where(n[:, 0] != 0, n[:, 0], torch.where(n[:, 1] != 0, n[:, 1], n[:, 2]))
    n = n[first > 0]
    key = [(float(v.abs().sum()), *(-v).tolist()) for v in n]
    return n[sorted(range(len(n)), key=key.__getitem__)]


def _first_minimum(values: torch.Tensor, rel: float = 1e-9) -> torch.Tensor:
    """Index (B,) of the first entry within a relative ``rel`` of the row minimum of (B, M):
    ties (equal lengths up to round-off) go to the earliest candidate, the input basis first."""
    low = values.amin(1, keepdim=True)
    return (values <= low + rel * low.abs()).float().argmax(1)


_COEFFICIENTS = _half_space_coefficients()
#: the 4 sign flips of (a, b, c) that keep the handedness, (4, 3)
_FLIPS = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)


@torch.no_grad()
def canonical_basis_change(lattice: torch.Tensor) -> torch.Tensor:
    """Integer matrix u (B, 3, 3), det u = +1 for det lattice > 0, such that ``u @ lattice`` is
    the canonical basis of the lattice: a function of the lattice alone, not of the basis given,
    except at ties (equal lengths up to 1e-9: the input's own vectors are kept first, so the
    map is idempotent), so ``u(m @ lattice) = u(lattice) @ m^-1`` for any
    unimodular m.

    Canonical: Minkowski-reduced (a, b, c attain the successive minima |a| <= |b| <= |c|, found
    among the combinations with coefficients in [-2, 2] of the pairwise size-reduced basis),
    signs as Niggli's convention (a.b, a.c, b.c all > 0 or all <= 0), det u = +1 (handedness kept).
    """
    lat = lattice.to(torch.float64)
    red, u0 = lll_reduce(lat)
    coef = _COEFFICIENTS.to(lat.device)                                  # (M, 3)
    vec = torch.einsum("mi,bij->bmj", coef, red)                          # (B, M, 3)
    sq = (vec * vec).sum(-1)                                              # (B, M)
    scale = sq.amin(1, keepdim=True)
    rows = torch.arange(len(lat), device=lat.device)
    first = _first_minimum(sq)
    v1 = vec[rows, first]
    # shortest vector not parallel to a, then shortest not coplanar with a and b
    cross = torch.linalg.cross(v1[:, None].expand_as(vec), vec).pow(2).sum(-1)
    second = _first_minimum(torch.where(cross > 1e-8 * scale * sq, sq, torch.inf))
    v2 = vec[rows, second]
    vol = (torch.linalg.cross(v1, v2)[:, None] * vec).sum(-1).abs()
    third = _first_minimum(torch.where(vol > 1e-6 * (scale * sq[rows, second][:, None] * sq).sqrt(),
                                       sq, torch.inf))
    n = torch.stack([coef[first], coef[second], coef[third]], 1)          # (B, 3, 3)
    u = n @ u0
    # Niggli signs: among the handedness-preserving flips, the first with all products > 0,
    # else the first with all <= 0 (exactly one of the two kinds exists up to zeros)
    b = u @ lat
    g = torch.stack([(b[:, 0] * b[:, 1]).sum(-1), (b[:, 0] * b[:, 2]).sum(-1),
                     (b[:, 1] * b[:, 2]).sum(-1)], -1)                    # (B, 3)
    flips = _FLIPS.to(lat.device)
    pair = torch.stack([flips[:, 0] * flips[:, 1], flips[:, 0] * flips[:, 2],
                        flips[:, 1] * flips[:, 2]], -1)                   # (4, 3)
    gf = g[:, None] * pair                                                # (B, 4, 3)
    tol = 1e-9 * scale
    positive = (gf > tol[..., None]).all(-1)
    choice = torch.where(positive.any(1), positive.float().argmax(1),
                         (gf <= tol[..., None]).all(-1).float().argmax(1))
    u = u * flips[choice][..., None]
    u = torch.where((torch.linalg.det(u) < 0)[:, None, None], -u, u)    # keeps a.b, a.c, b.c
    # a failure to find a basis (not expected within the coefficient bound) keeps the reduced one
    ok = (torch.linalg.det(u).round().abs() == 1)[:, None, None]
    return torch.where(ok, u, u0).round()


@torch.no_grad()
def to_canonical_basis(lattice: torch.Tensor, frac: torch.Tensor, batch: torch.Tensor):
    """Re-express crystals in their canonical right-handed basis (same crystals).

    lattice (B,3,3) rows in Å, frac (N,3), batch (N,) -> (u @ lattice, wrap(frac @ u^-1)) with u
    unimodular, det u = +1 when det lattice > 0.
    """
    u = canonical_basis_change(lattice).to(lattice.dtype)
    inv = torch.linalg.inv(u).round()
    new_frac = wrap(torch.einsum("ni,nij->nj", frac, inv.to(frac.dtype)[batch]))
    return u @ lattice, new_frac
