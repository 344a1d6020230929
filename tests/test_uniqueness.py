import json

import numpy as np
import pytest
from click.testing import CliRunner
from pymatgen.core import Structure

import crystal_metrics as cm
from crystal_metrics import Crystal, StructureSet
from crystal_metrics.cli import main
from crystal_metrics.metrics.uniqueness import novelty, uniqueness
from support import MP20_DIR, TRANSFORMS, VAL_CSV, caesium_chloride, rock_salt

UNIQUENESS_KEYS = {"n_structures", "n_unique", "uniqueness", "n_read_errors", "read_errors",
                   "match_errors", "tolerances"}
NOVELTY_KEYS = {"n_gen", "n_train", "n_unique", "uniqueness", "n_novel", "novelty",
                "n_unique_novel", "unique_novel", "n_read_errors", "read_errors", "match_errors",
                "tolerances"}


def as_set(*crystals) -> StructureSet:
    return StructureSet([f"s{i}" for i in range(len(crystals))], list(crystals))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def five_with_two_duplicates() -> StructureSet:
    """NaCl, CsCl-type NaCl (same composition), a rotated NaCl, KCl, a supercell of NaCl."""
    nacl = rock_salt()
    return as_set(nacl, caesium_chloride(3.6), TRANSFORMS["rotation"](nacl),
                  rock_salt(6.29, (19, 17)), TRANSFORMS["supercell"](TRANSFORMS["translation"](nacl)))


def test_duplicates_join_the_class_of_the_first():
    result = uniqueness(five_with_two_duplicates())
    assert list(result.representative) == [0, 1, 0, 3, 0]
    assert result.summary() == {"n_unique": 3, "uniqueness": 3 / 5}
    assert result.novel is None and not result.errors


def test_small_distortions_are_duplicates_and_large_ones_are_not():
    rng = np.random.default_rng(0)
    nacl = rock_salt()

    def jiggled(sigma):  # Å
        cart = nacl.frac_coords @ nacl.lattice + rng.normal(0, sigma, (8, 3))
        return Crystal.checked(nacl.lattice, cart @ np.linalg.inv(nacl.lattice), nacl.numbers)

    assert list(uniqueness(as_set(nacl, jiggled(0.02), jiggled(1.0))).representative) == [0, 0, 2]


def test_novelty_of_examples_against_itself_and_a_disjoint_set(examples):
    itself = novelty(examples, examples, workers=1)
    assert itself.summary()["novelty"] == 0.0
    assert list(itself.train_match) == list(range(40))  # no two MP-20 test examples are equal
    disjoint = cm.novelty(MP20_DIR, VAL_CSV).summary()
    assert (disjoint["n_novel"], disjoint["novelty"], disjoint["unique_novel"]) == (40, 1.0, 1.0)


def test_novelty_counts_unique_and_novel():
    gen = five_with_two_duplicates()
    result = novelty(gen, as_set(caesium_chloride(4.0), rock_salt(5.0, (19, 35))))
    assert list(result.novel) == [True, False, True, True, True]
    assert result.summary() == {"n_unique": 3, "uniqueness": 0.6, "n_novel": 4, "novelty": 0.8,
                                "n_unique_novel": 2, "unique_novel": 0.4}


def test_parallel_groups_equal_serial(examples):
    copies = StructureSet(examples.names * 2, examples.crystals + [
        TRANSFORMS["permutation"](c) for c in examples.crystals])
    serial, parallel = (uniqueness(copies, workers=w) for w in (1, 2))
    np.testing.assert_array_equal(serial.representative, parallel.representative)
    assert list(serial.representative) == list(range(40)) * 2


def test_structure_pymatgen_cannot_reduce_is_unique_and_reported(monkeypatch):
    def fail(self, *args, **kwargs):
        raise ValueError("degenerate")

    monkeypatch.setattr(Structure, "get_primitive_structure", fail)
    result = uniqueness(as_set(rock_salt(), rock_salt()))
    assert result.summary()["n_unique"] == 2
    assert [e.name for e in result.errors] == ["s0", "s1"]
    assert "cannot reduce to a primitive cell: ValueError: degenerate" in result.errors[0].reason


def test_uniqueness_and_novelty_cli(tmp_path):
    result = run("uniqueness", MP20_DIR, "--json", tmp_path / "u.json")
    assert result.exit_code == 0, result.output
    assert "unique       1.0000  (40/40)" in result.output
    data = json.loads((tmp_path / "u.json").read_text())
    assert set(data) == UNIQUENESS_KEYS and data["tolerances"]["stol"] == 0.3

    result = run("novelty", MP20_DIR, MP20_DIR, "--json", tmp_path / "n.json", "--workers", 1)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "n.json").read_text())
    assert set(data) == NOVELTY_KEYS
    assert (data["n_gen"], data["n_train"], data["n_novel"], data["uniqueness"]) == (40, 40, 0, 1.0)


@pytest.mark.parametrize("command", ["uniqueness", "novelty"])
def test_uniqueness_and_novelty_cli_errors(tmp_path, command):
    paths = [MP20_DIR] * (command == "novelty")
    result = run(command, *paths, tmp_path / "missing")
    assert result.exit_code == 1 and "no readable structures" in result.output
    out = tmp_path / "out.json"
    out.write_text("precious")
    result = run(command, *paths, MP20_DIR, "--json", out)
    assert result.exit_code == 2 and "exists" in result.output and out.read_text() == "precious"
