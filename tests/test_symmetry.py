"""Space-group and crystal-system distributions: known structures, hand-worked fractions and
total variation distances, invariance, the cache, the command, error paths."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import Crystal, CrystalMetricsError, Selection, symmetry
from crystal_metrics.cli import main
from crystal_metrics.features import StructureCache
from crystal_metrics.features import space_groups as space_group_module
from crystal_metrics.features.space_groups import cache_key, space_groups
from crystal_metrics.metrics.symmetry import (
    ANGLE_TOLERANCE,
    CRYSTAL_SYSTEMS,
    SYMPREC,
    SpaceGroups,
    crystal_system,
    space_group_comparison,
    total_variation,
)
from support import MP20_DIR, TRANSFORMS, VAL_CSV, caesium_chloride, rock_salt, write_cifs

pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _cell(a, b, c, alpha, beta, gamma) -> Crystal:
    """One Cu atom in the cell of these parameters (Å, degrees): the lattice's own point group."""
    from pymatgen.core import Lattice

    return Crystal.checked(Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix,
                           [[0, 0, 0]], [29])


def _wurtzite(a=3.25, c=5.21, u=0.382) -> Crystal:
    from pymatgen.core import Lattice

    frac = [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, .5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, .5 + u]]
    return Crystal.checked(Lattice.hexagonal(a, c).matrix, frac, [30, 30, 8, 8])


def _rutile(a=4.594, c=2.959, x=0.305) -> Crystal:
    frac = [[0, 0, 0], [.5, .5, .5], [x, x, 0], [1 - x, 1 - x, 0], [.5 + x, .5 - x, .5],
            [.5 - x, .5 + x, .5]]
    return Crystal.checked(np.diag([a, a, c]), frac, [22, 22, 8, 8, 8, 8])


# One structure per crystal system: the seven Bravais lattices' primitive cells with one atom
# (holohedries P-1, P2/m, Pmmm, P4/mmm, R-3m, P6/mmm, Pm-3m), and three real structures.
KNOWN = [
    ("triclinic cell", _cell(3.1, 3.7, 4.3, 71, 83, 97), 2, "triclinic"),
    ("monoclinic cell", _cell(3.1, 3.7, 4.3, 90, 104, 90), 10, "monoclinic"),
    ("orthorhombic cell", _cell(3.1, 3.7, 4.3, 90, 90, 90), 47, "orthorhombic"),
    ("tetragonal cell", _cell(3.1, 3.1, 4.3, 90, 90, 90), 123, "tetragonal"),
    ("rhombohedral cell", _cell(3.5, 3.5, 3.5, 70, 70, 70), 166, "trigonal"),
    ("hexagonal cell", _cell(3.1, 3.1, 4.3, 90, 90, 120), 191, "hexagonal"),
    ("cubic cell", _cell(3.0, 3.0, 3.0, 90, 90, 90), 221, "cubic"),
    ("rock salt NaCl (Fm-3m)", rock_salt(), 225, "cubic"),
    ("CsCl type (Pm-3m)", caesium_chloride(), 221, "cubic"),
    ("wurtzite ZnO (P6_3mc)", _wurtzite(), 186, "hexagonal"),
    ("rutile TiO2 (P4_2/mnm)", _rutile(), 136, "tetragonal"),
]


@pytest.mark.parametrize("name, crystal, number, system", KNOWN, ids=[k[0] for k in KNOWN])
def test_known_structures(name, crystal, number, system):
    found = space_groups([crystal], workers=1)
    assert found.numbers.tolist() == [number] and crystal_system(number) == system
    for transform in ("rotation", "translation", "supercell", "change_of_basis"):
        moved = TRANSFORMS[transform](crystal)
        assert space_groups([moved], workers=1).numbers.tolist() == [number], transform


@pytest.mark.parametrize("number, system", [
    (1, "triclinic"), (2, "triclinic"), (3, "monoclinic"), (15, "monoclinic"),
    (16, "orthorhombic"), (74, "orthorhombic"), (75, "tetragonal"), (142, "tetragonal"),
    (143, "trigonal"), (167, "trigonal"), (168, "hexagonal"), (194, "hexagonal"),
    (195, "cubic"), (230, "cubic")])
def test_crystal_system_boundaries(number, system):
    assert crystal_system(number) == system


@pytest.mark.parametrize("number", [0, 231])
def test_no_such_space_group(number):
    with pytest.raises(CrystalMetricsError, match=f"no space group number {number}"):
        crystal_system(number)


def test_fractions_and_total_variation_by_hand():
    gen = SpaceGroups(np.array([225, 221, 123, 191]), np.arange(4), {})
    ref = SpaceGroups(np.array([225, 225]), np.arange(2), {})
    fractions = dict(zip(CRYSTAL_SYSTEMS, gen.crystal_system_fractions()))
    assert fractions == {"triclinic": 0, "monoclinic": 0, "orthorhombic": 0, "tetragonal": 0.25,
                         "trigonal": 0, "hexagonal": 0.25, "cubic": 0.5}
    assert gen.space_group_fractions()[[224, 220, 122, 190]].tolist() == [0.25] * 4
    # systems: |0.5 - 1| + 0.25 + 0.25 = 1, halved; groups: 0.75 + 3 x 0.25 = 1.5, halved
    assert space_group_comparison(gen, ref) == {"crystal_system_tv": 0.5, "space_group_tv": 0.75}
    assert space_group_comparison(gen, gen) == {"crystal_system_tv": 0.0, "space_group_tv": 0.0}
    assert total_variation([1, 0], [0, 1]) == 1.0
    summary = gen.summary()
    assert summary["space_groups"] == {"225": 0.25, "221": 0.25, "123": 0.25, "191": 0.25}
    assert (summary["n"], summary["n_errors"]) == (4, 0)


def test_invariant_under_symmetry_transforms(examples):
    crystals = examples.crystals[:12]
    original = space_groups(crystals, workers=1).numbers
    assert len(set(original.tolist())) > 5  # a varied set
    for name, transform in TRANSFORMS.items():
        moved = space_groups([transform(c) for c in crystals], workers=1).numbers
        np.testing.assert_array_equal(moved, original, err_msg=name)


def test_symprec_matters_for_a_slightly_distorted_structure():
    crystal = rock_salt()
    shaken = Crystal.checked(crystal.lattice, crystal.frac_coords + np.random.default_rng(0).normal(
        scale=0.02 / 5.64, size=crystal.frac_coords.shape), crystal.numbers)  # about 0.02 Å
    assert space_groups([shaken], symprec=0.1, workers=1).numbers.tolist() == [225]
    assert space_groups([shaken], symprec=0.001, workers=1).numbers.tolist() == [1]


def test_cache_and_failures(tmp_path, monkeypatch):
    cache = StructureCache(tmp_path / "e.sqlite")
    crystals = [rock_salt(), caesium_chloride()]
    space_groups(crystals, workers=1, cache=cache)
    assert cache.counts() == {cache_key(0.1, 5.0): 2}
    calls = []

    def failing(crystal, symprec, angle_tolerance):
        calls.append(crystal)
        return "symmetry search failed: ValueError: Symmetry detection failed"

    monkeypatch.setattr(space_group_module, "_space_group_one", failing)
    again = space_groups(crystals, workers=1, cache=cache)  # from the cache: nothing computed
    assert calls == [] and again.numbers.tolist() == [225, 221]
    failed = space_groups(crystals, symprec=0.01, workers=1, cache=cache)  # another key
    assert len(calls) == 2 and set(failed.failures) == {0, 1} and not len(failed.numbers)
    assert failed.failures[0] == "symmetry search failed: ValueError: Symmetry detection failed"
    assert cache.counts() == {cache_key(0.1, 5.0): 2}  # failures are not stored
    assert failed.summary()["crystal_systems"]["cubic"] == 0.0
    assert space_group_comparison(failed, again) == {"crystal_system_tv": None,
                                                     "space_group_tv": None}


def test_api_with_selection(examples):
    result = symmetry(examples, VAL_CSV, Selection(valid_only=True), workers=1)
    assert result["scored"] == "the 39 valid of 40 readable" and result["gen"]["n"] == 39
    assert result["ref"]["n"] == 40 and 0 < result["crystal_system_tv"] < 1
    assert sum(result["gen"]["crystal_systems"].values()) == pytest.approx(1.0)
    alone = symmetry(examples, workers=1)
    assert alone["ref"] is None and alone["space_group_tv"] is None and alone["n_ref"] is None


def test_cli(tmp_path):
    out = tmp_path / "s.json"
    result = run("symmetry", MP20_DIR, VAL_CSV, "--workers", 1, "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {"n_gen", "n_ref", "valid_only", "n_samples", "seed", "n_scored", "scored",
            "n_read_errors", "read_errors", "symprec", "angle_tolerance", "gen", "ref",
            "crystal_system_tv", "space_group_tv", "errors"} == set(data)
    cubic = data["gen"]["crystal_systems"]["cubic"]
    assert f"cubic              GEN {cubic:.4f}  REF" in result.output
    assert f"crystal-system TV  {data['crystal_system_tv']:.4f}" in result.output
    only_gen = run("symmetry", MP20_DIR, "--workers", 1)
    assert only_gen.exit_code == 0 and "REF" not in only_gen.output
    assert run("symmetry", MP20_DIR, "--symprec", 0).exit_code == 2
    missing = run("symmetry", tmp_path / "missing")
    assert missing.exit_code == 1 and "no readable structures" in missing.output
    folder = write_cifs(tmp_path / "gen", {"nacl": rock_salt()})
    result = run("symmetry", folder, "--valid-only", "--n-samples", 2)
    assert result.exit_code == 2 and "GEN has 1 valid structure, fewer than the 2" in result.output


def test_weights_lists_the_cached_space_groups_as_space_groups(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "cache"))
    folder = write_cifs(tmp_path / "gen", {"nacl": rock_salt(), "cscl": caesium_chloride()})
    assert run("symmetry", folder, "--workers", 1).exit_code == 0
    listing = run("weights").output
    assert f"space groups {cache_key(SYMPREC, ANGLE_TOLERANCE).split(':', 1)[1]}: 2 " \
           "structures" in listing and "embeddings" not in listing
