"""Test helpers: paths of the shipped example data, hand-built crystals, symmetry transforms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from crystal_metrics import Crystal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MP20_DIR = EXAMPLES / "mp20_test"
VAL_CSV = EXAMPLES / "mp20_val_sample.csv"
BROKEN_DIR = EXAMPLES / "broken"


def rock_salt(a: float = 5.64, numbers=(11, 17)) -> Crystal:
    """Conventional rock-salt cell (default NaCl): 4 + 4 atoms, nearest neighbour a/2."""
    fcc = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    return Crystal.checked(np.eye(3) * a, np.vstack([fcc, fcc + [.5, 0, 0]]),
                           [numbers[0]] * 4 + [numbers[1]] * 4)


# Transforms that must leave every metric unchanged. Each maps a Crystal to an equivalent one.
def rotate(c: Crystal, seed: int = 0) -> Crystal:
    matrix = Rotation.random(random_state=seed).as_matrix()
    return Crystal.checked(c.lattice @ matrix.T, c.frac_coords, c.numbers)


def translate(c: Crystal, seed: int = 0) -> Crystal:
    shift = np.random.default_rng(seed).uniform(-3, 3, size=3)
    return Crystal.checked(c.lattice, c.frac_coords + shift, c.numbers)


def permute(c: Crystal, seed: int = 0) -> Crystal:
    order = np.random.default_rng(seed).permutation(c.n_atoms)
    return Crystal.checked(c.lattice, c.frac_coords[order], c.numbers[order])


def supercell(c: Crystal, reps=(2, 1, 2)) -> Crystal:
    shifts = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    frac = ((c.frac_coords[None] + shifts[:, None]) / reps).reshape(-1, 3)
    return Crystal.checked(c.lattice * np.array(reps)[:, None], frac, np.tile(c.numbers, len(shifts)))


UNIMODULAR = np.array([[1, 1, 0], [0, 1, 0], [2, 3, 1]])  # det 1, far from identity


def change_basis(c: Crystal, m: np.ndarray = UNIMODULAR) -> Crystal:
    """Same crystal described with lattice rows m @ L (m integer, det ±1)."""
    return Crystal.checked(m @ c.lattice, c.frac_coords @ np.linalg.inv(m), c.numbers)


def unwrap(c: Crystal, seed: int = 0) -> Crystal:
    """Each atom moved by a random whole number of cells (as in an unwrapped MD frame)."""
    shifts = np.random.default_rng(seed).integers(-3, 4, size=(c.n_atoms, 3))
    return Crystal.checked(c.lattice, c.frac_coords + shifts, c.numbers)


TRANSFORMS = {"rotation": rotate, "translation": translate, "permutation": permute,
              "supercell": supercell, "change_of_basis": change_basis, "unwrapped": unwrap}


def caesium_chloride(a: float = 4.0, numbers=(11, 17), shift: float = 0.0) -> Crystal:
    """CsCl-type cell: one atom at the origin, one at the centre moved `shift` Å along x."""
    return Crystal.checked(np.eye(3) * a, [[0, 0, 0], [.5 + shift / a, .5, .5]], list(numbers))


def write_cifs(folder: Path, crystals: dict) -> Path:
    """Write {name: Crystal} as `folder/name.cif` (P1) and return `folder`."""
    from pymatgen.io.cif import CifWriter

    folder.mkdir(parents=True, exist_ok=True)
    for name, crystal in crystals.items():
        CifWriter(crystal.to_pymatgen()).write_file(folder / f"{name}.cif")
    return folder


def simple_cubic_grid(k: int = 22, spacing: float = 2.0, number: int = 6) -> Crystal:
    """k³ atoms on a simple cubic grid `spacing` Å apart (22³ = 10,648: a large cell)."""
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3) / k
    return Crystal.checked(np.eye(3) * k * spacing, grid, [number] * len(grid))


def write_p1_cif(path: Path, crystal: Crystal) -> Path:
    """A P1 CIF of `crystal` written directly (fast for large cells)."""
    from pymatgen.core import Element

    a, b, c = np.linalg.norm(crystal.lattice, axis=1)
    if not np.allclose(crystal.lattice, np.diag([a, b, c])):
        raise ValueError("write_p1_cif writes orthorhombic cells only")
    sites = "\n".join(f"{Element.from_Z(int(z)).symbol} {x:.8f} {y:.8f} {w:.8f}"
                      for z, (x, y, w) in zip(crystal.numbers, crystal.frac_coords))
    path.write_text(f"data_{path.stem}\n_cell_length_a {a}\n_cell_length_b {b}\n_cell_length_c {c}\n"
                    "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
                    "_symmetry_space_group_name_H-M 'P 1'\nloop_\n_atom_site_type_symbol\n"
                    "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n" + sites + "\n")
    return path


def smact4_valid(numbers, counts) -> bool:
    """SMACT 4's own smact_validity with oxidation_states_set="smact14" (reference for the
    shipped smact14 table)."""
    import warnings

    from pymatgen.core import Composition, Element
    from smact.screening import smact_validity

    composition = Composition({Element.from_Z(z): c for z, c in zip(numbers, counts)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(smact_validity(composition, oxidation_states_set="smact14"))
