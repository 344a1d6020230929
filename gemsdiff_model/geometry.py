"""Crystal geometry in torch (no torch.nn): lattice vector space, lattice parameters, torus.

Conventions
-----------
* ``lattice``: (..., 3, 3) tensor, **rows** are the lattice vectors a, b, c in Å (pymatgen
  convention); Cartesian positions are ``frac @ lattice``.
* ``rho``: the paper's cell matrix, **columns** are the lattice vectors: ``rho = lattice.mT``.
* Lattice vector space (paper eqs. 12-13): the 9-d orthonormal (Frobenius) basis ``BASIS`` of
  gl3(R) = so3 (3 rotation) + traceless symmetric (5 shape, volume 1) + R*I (1 volume).

Choice against the paper: the real matrix logarithm of a cell need not exist (negative
eigenvalues) and is not unique, so ``lattice_to_vector`` uses the polar form
``rho = exp(A) @ exp(S)`` with A antisymmetric (rotation, |angle| <= pi) and S symmetric
(``exp(S) = sqrt(rho^T rho)``, the SPD stretch). This gives one real 9-vector for every cell with
det > 0 (unique except for rotations of exactly pi, a null set); ``vector_to_lattice`` inverts
it exactly. Because S depends only on the metric ``rho^T rho`` it is rotation invariant, so the
5 shape + 1 volume coordinates describe the lattice independently of its orientation.
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
ROTATION, SHAPE, VOLUME = slice(0, 3), slice(3, 8), slice(8, 9)


def _basis_like(t: torch.Tensor) -> torch.Tensor:
    return BASIS.to(device=t.device, dtype=t.dtype)


def vector_to_algebra(v: torch.Tensor) -> torch.Tensor:
    """(..., 9) coordinates -> (..., 3, 3) matrix ``pi v`` in gl3(R)."""
    return torch.einsum("...k,kij->...ij", v, _basis_like(v))


def algebra_to_vector(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) matrix -> (..., 9) coordinates (orthogonal projection, exact inverse of pi)."""
    return torch.einsum("...ij,kij->...k", m, _basis_like(m))


def _skew(w: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(w[..., 0])
    return torch.stack([torch.stack([z, -w[..., 2], w[..., 1]], -1),
                        torch.stack([w[..., 2], z, -w[..., 0]], -1),
                        torch.stack([-w[..., 1], w[..., 0], z], -1)], -2)


def so3_exp(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues: rotation vector (..., 3) (radians) -> rotation matrix (..., 3, 3)."""
    theta = w.norm(dim=-1, keepdim=True)[..., None]
    k = _skew(w)
    small = theta < 1e-6
    t = torch.where(small, torch.ones_like(theta), theta)
    a = torch.where(small, 1 - theta ** 2 / 6, torch.sin(t) / t)
    b = torch.where(small, 0.5 - theta ** 2 / 24, (1 - torch.cos(t)) / t ** 2)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def so3_log(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> rotation vector (..., 3) with angle in [0, pi].

    Robust near 0 (series) and near pi (axis from the symmetric part, sign from the skew part).
    """
    vee = torch.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                       r[..., 1, 0] - r[..., 0, 1]], -1)  # = 2 sin(theta) n
    cos = ((r.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    sin = vee.norm(dim=-1) / 2
    theta = torch.atan2(sin, cos)  # well conditioned everywhere, unlike acos near +-1
    # regular branch: theta / (2 sin theta) * vee
    factor = torch.where(theta < 1e-6, 0.5 + theta ** 2 / 12, theta / (2 * sin.clamp_min(1e-30)))
    w_regular = factor[..., None] * vee
    # near pi: (R + R^T)/2 - cos I = (1 - cos) n n^T ; take its largest column
    eye = torch.eye(3, dtype=r.dtype, device=r.device)
    bmat = (r + r.mT) / 2 - cos[..., None, None] * eye
    col = bmat.diagonal(dim1=-2, dim2=-1).argmax(-1)
    n = torch.gather(bmat, -1, col[..., None, None].expand(*bmat.shape[:-1], 1))[..., 0]
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    sign = torch.where((n * vee).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(r.dtype)
    w_pi = sign * n * theta[..., None]
    return torch.where((theta > 2.5)[..., None], w_pi, w_regular)


def sym_exp(s: torch.Tensor) -> torch.Tensor:
    """Exponential of symmetric (..., 3, 3) matrices via eigh."""
    lam, vec = torch.linalg.eigh(s)
    return (vec * torch.exp(lam)[..., None, :]) @ vec.mT


def spd_log(p: torch.Tensor) -> torch.Tensor:
    """Logarithm of symmetric positive definite (..., 3, 3) matrices via eigh."""
    lam, vec = torch.linalg.eigh(p)
    return (vec * torch.log(lam)[..., None, :]) @ vec.mT


def lattice_to_vector(lattice: torch.Tensor) -> torch.Tensor:
    """Lattice (..., 3, 3) rows in Å, det > 0 -> (..., 9) coordinates (polar form, see module doc).

    Computed in float64 and returned in the input dtype. Raises ValueError for det <= 0.
    """
    dtype = lattice.dtype
    rho = lattice.to(torch.float64).mT
    if (torch.linalg.det(rho) <= 0).any():
        raise ValueError("lattice_to_vector needs lattices with positive determinant")
    gram = rho.mT @ rho
    s = spd_log(gram) / 2                    # exp(S) = sqrt(rho^T rho)
    rot = rho @ sym_exp(-s)                  # R = rho exp(-S), in SO3
    u, _, vh = torch.linalg.svd(rot)         # re-orthonormalise against round-off
    rot = u @ vh
    w = so3_log(rot)
    a = _skew(w)
    return (algebra_to_vector(a) + algebra_to_vector(s)).to(dtype)


def vector_to_lattice(v: torch.Tensor) -> torch.Tensor:
    """(..., 9) coordinates -> lattice (..., 3, 3) rows in Å: ``(exp(A) exp(S))^T``."""
    dtype = v.dtype
    v64 = v.to(torch.float64)
    a = vector_to_algebra(torch.cat([v64[..., ROTATION], torch.zeros_like(v64[..., 3:])], -1))
    s = vector_to_algebra(torch.cat([torch.zeros_like(v64[..., ROTATION]), v64[..., 3:]], -1))
    w = torch.stack([a[..., 2, 1], a[..., 0, 2], a[..., 1, 0]], -1)
    rho = so3_exp(w) @ sym_exp(s)
    return rho.mT.to(dtype)


def lattice_parameters(lattice: torch.Tensor) -> torch.Tensor:
    """Lattice (..., 3, 3) rows in Å -> (..., 6): a, b, c in Å and alpha, beta, gamma in radians.

    Differentiable, rotation invariant (depends on the metric only).
    """
    lengths = lattice.norm(dim=-1)
    unit = lattice / lengths[..., None].clamp_min(1e-12)

    def angle(i, j):
        cos = (unit[..., i, :] * unit[..., j, :]).sum(-1)
        return torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))

    return torch.cat([lengths, torch.stack([angle(1, 2), angle(0, 2), angle(0, 1)], -1)], -1)


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


def wrapped_normal_sample(mean: torch.Tensor, std, generator=None) -> torch.Tensor:
    """Sample [N(mean, std^2 I)]_T on the torus; std broadcastable to mean."""
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return wrap(mean + std * noise)


def wrapped_normal_logpdf(x: torch.Tensor, mean: torch.Tensor, std: float,
                          n_images: int | None = None):
    """Per-coordinate log density of the wrapped normal on [0, 1) (sum over images |k| <= n,
    by default enough images for 8 standard deviations)."""
    if n_images is None:
        n_images = math.ceil(8 * float(std)) + 2
    k = torch.arange(-n_images, n_images + 1, dtype=x.dtype, device=x.device)
    d = (x - mean)[..., None] + k
    logp = -0.5 * (d / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))
    return torch.logsumexp(logp, dim=-1)


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


def canonical_parameters(lattice: torch.Tensor) -> torch.Tensor:
    """Lattice parameters (B, 6) of the canonical basis: invariant under rotation and (up to
    ties) under any change of basis; differentiable in ``lattice`` (the basis change is fixed)."""
    u = canonical_basis_change(lattice).to(lattice.dtype)
    return lattice_parameters(u @ lattice)


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
