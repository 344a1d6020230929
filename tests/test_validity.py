import numpy as np
import pytest

from crystal_metrics import Crystal, validity
from crystal_metrics.metrics.periodic import min_distance
from crystal_metrics.metrics.validity import compositionally_valid, structurally_valid
from support import TRANSFORMS, rock_salt, smact4_valid


def _cubic(a, frac, numbers):
    return Crystal.checked(np.eye(3) * a, frac, numbers)


def test_rock_salt_is_valid(nacl):
    assert min_distance(nacl) == pytest.approx(5.64 / 2)
    assert structurally_valid(nacl) and compositionally_valid(nacl)
    result = validity([nacl])
    assert result.n_valid == 1 and result.fractions() == {
        "structural": 1.0, "compositional": 1.0, "overall": 1.0}


def test_two_atoms_0_3_angstrom_apart_are_invalid():
    crystal = _cubic(5.0, [[0, 0, 0], [0.06, 0, 0]], [11, 17])  # 0.06 * 5 Å = 0.3 Å
    assert min_distance(crystal) == pytest.approx(0.3)
    assert not structurally_valid(crystal)


def test_atom_too_close_to_its_own_image():
    crystal = Crystal.checked(np.diag([0.4, 3.0, 3.0]), [[0.2, 0.5, 0.5]], [26])
    assert min_distance(crystal) == pytest.approx(0.4)
    assert not structurally_valid(crystal)


def test_distance_across_the_cell_boundary():
    crystal = _cubic(4.0, [[0.02, 0.5, 0.5], [0.98, 0.5, 0.5]], [8, 8])  # 0.16 Å through the face
    assert min_distance(crystal) == pytest.approx(0.16)


def test_volume_below_0_1_cubic_angstrom_is_invalid_even_if_distances_pass():
    d = 0.51  # FCC primitive cell with nearest distance 0.51 Å: volume d³/√2 = 0.0938 Å³
    lattice = d / np.sqrt(2) * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    crystal = Crystal.checked(lattice, [[0, 0, 0]], [6])
    assert min_distance(crystal) == pytest.approx(d)
    assert crystal.volume == pytest.approx(d ** 3 / np.sqrt(2))
    assert not structurally_valid(crystal)


@pytest.mark.parametrize("formula_numbers, expected", [
    ([11, 17, 17], False),          # NaCl2: no charge-neutral assignment
    ([11, 17], True),               # NaCl
    ([26, 26, 8, 8, 8], True),      # Fe2O3
    ([29, 79], True),               # CuAu: all metals count as valid
    ([6, 6, 6], True),              # single element
    ([8, 8, 9], False),             # O2F: both anions
])
def test_compositional_validity_hand_worked(formula_numbers, expected):
    n = len(formula_numbers)
    frac = np.linspace(0, 1, n, endpoint=False)[:, None] * [1, 1, 1]
    crystal = _cubic(4.0 * n, frac, formula_numbers)
    assert compositionally_valid(crystal) is expected


def test_examples_compositional_flags_agree_with_smact_4_for_smact14(examples):
    """The example set under both tables (SMACT 4's own smact_validity for smact14)."""
    expected = [smact4_valid(*c.reduced_composition()) for c in examples.crystals]
    assert validity(examples, "smact14").compositional.tolist() == expected
    assert validity(examples).compositional.tolist() == expected  # no Pm, Ir or Zr case here
    assert 0 < sum(expected) < len(expected)  # the example set exercises both outcomes


@pytest.mark.parametrize("seed", range(12))
def test_min_distance_matches_pymatgen_neighbor_list_on_skewed_cells(seed):
    rng = np.random.default_rng(seed)
    lattice = rng.normal(size=(3, 3)) * 3
    if seed % 3 == 0:  # a very skewed basis of a modest lattice: exercises LLL reduction
        lattice = np.array([[1, 7, 0], [0, 1, 5], [0, 0, 1]]) @ lattice
    if np.linalg.det(lattice) < 0:
        lattice[0] *= -1
    crystal = Crystal.checked(lattice, rng.uniform(size=(5, 3)), [8] * 5)
    structure = crystal.to_pymatgen()
    _, _, _, distances = structure.get_neighbor_list(r=np.linalg.norm(lattice, axis=1).min() + 0.1)
    assert min_distance(crystal) == pytest.approx(distances[distances > 1e-8].min(), rel=1e-9)


def test_min_distance_of_a_10648_atom_cell_is_exact():
    # 22^3 simple cubic grid, spacing 2 Å; one atom moved 0.3 Å towards its +x neighbour.
    # All pairs would need atoms^2 x images memory (an array of ~300 GB here).
    grid = np.stack(np.meshgrid(*[np.arange(22)] * 3, indexing="ij"), -1).reshape(-1, 3) / 22
    grid[1234, 0] += 0.3 / 44
    crystal = Crystal.checked(np.eye(3) * 44.0, grid, [6] * len(grid))
    assert crystal.n_atoms == 10648
    assert min_distance(crystal) == pytest.approx(1.7, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_min_distance_of_hundreds_of_atoms_matches_pymatgen(seed):
    rng = np.random.default_rng(seed)
    lattice = np.array([[1, 2, 0], [0, 1, 3], [0, 0, 1]]) @ (np.diag([9.0, 11.0, 10.0])
                                                             + rng.normal(size=(3, 3)))
    crystal = Crystal.checked(lattice, rng.uniform(-2, 2, size=(300, 3)), [8] * 300)
    _, _, _, distances = crystal.to_pymatgen().get_neighbor_list(r=3.0)
    assert min_distance(crystal) == pytest.approx(distances[distances > 1e-8].min(), rel=1e-12)


def test_min_distance_coincident_atoms_and_a_single_atom():
    assert min_distance(_cubic(3.0, [[0, 0, 0], [0.2, 0, 0], [1.0, 0, 0]], [6, 6, 6])) == 0.0
    assert min_distance(_cubic(3.0, [[0.5, 0.5, -1e-17]], [6])) == pytest.approx(3.0, rel=1e-15)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_validity_invariant_under_symmetry_transforms(examples, name):
    transform = TRANSFORMS[name]
    original = validity(examples.crystals)
    transformed = validity([transform(c) for c in examples.crystals])
    np.testing.assert_array_equal(original.structural, transformed.structural)
    np.testing.assert_array_equal(original.compositional, transformed.compositional)
    np.testing.assert_allclose(original.min_distance, transformed.min_distance, rtol=1e-9)


def test_invariance_catches_a_broken_structure():
    squeezed = rock_salt(0.9)  # nearest neighbours 0.45 Å: invalid in every description
    for transform in TRANSFORMS.values():
        assert not structurally_valid(transform(squeezed))


def test_empty_set_gives_no_fractions():
    result = validity([])
    assert result.n == 0 and result.fractions()["overall"] is None
