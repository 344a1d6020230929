import numpy as np
import pytest

from crystal_metrics import Crystal, density_emd, n_elements_emd, read_structures
from crystal_metrics.metrics.distribution import densities, emd
from support import TRANSFORMS, rock_salt


def test_rock_salt_density_by_hand(nacl):
    mass = 4 * (22.98976928 + 35.453)  # amu
    assert nacl.density == pytest.approx(mass * 1.66053906660 / 5.64 ** 3)
    assert nacl.density == pytest.approx(2.165, abs=0.005)  # handbook value for NaCl


def test_density_emd_of_shifted_sets_is_the_shift():
    # densities scale as a^-3: pick lattice constants that give densities d and d + 0.5
    base = rock_salt().density
    a_for = lambda rho: 5.64 * (base / rho) ** (1 / 3)
    gen = [rock_salt(a_for(rho)) for rho in (1.0, 2.0, 3.0)]
    ref = [rock_salt(a_for(rho + 0.5)) for rho in (1.0, 2.0, 3.0)]
    np.testing.assert_allclose(densities(gen), [1.0, 2.0, 3.0])
    assert density_emd(gen, ref) == pytest.approx(0.5)
    assert density_emd(gen, gen) == 0.0


def test_n_elements_emd_by_hand(nacl):
    ternary = Crystal.checked(np.eye(3) * 6, [[0, 0, 0], [.5, .5, .5], [.5, 0, 0]], [11, 17, 8])
    assert n_elements_emd([nacl, nacl], [ternary, ternary]) == pytest.approx(1.0)
    assert n_elements_emd([nacl, ternary], [ternary, ternary]) == pytest.approx(0.5)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_emds_invariant_under_symmetry_transforms(examples, name):
    transform = TRANSFORMS[name]
    ref = [rock_salt()] * 3
    moved = [transform(c) for c in examples.crystals]
    np.testing.assert_allclose(densities(moved), densities(examples.crystals), rtol=1e-12)
    assert density_emd(moved, ref) == pytest.approx(density_emd(examples, ref), rel=1e-12)
    assert n_elements_emd(moved, ref) == n_elements_emd(examples, ref)


def test_api_reads_paths_and_objects_alike(examples):
    from support import MP20_DIR, VAL_CSV

    ref = read_structures(VAL_CSV)
    expected = emd(densities(examples.crystals), densities(ref.crystals))
    assert expected > 0.1
    assert density_emd(MP20_DIR, VAL_CSV) == pytest.approx(expected)
    assert density_emd(examples.structures, ref) == pytest.approx(expected)


def test_empty_set_is_an_error(nacl):
    with pytest.raises(ValueError, match="at least one"):
        density_emd([], [nacl])
