import json

import numpy as np
import pytest
from click.testing import CliRunner
from pymatgen.analysis.structure_matcher import StructureMatcher

import crystal_metrics as cm
from crystal_metrics import Crystal, StructureSet, validity
from crystal_metrics.cli import main
from crystal_metrics.errors import PairingError
from crystal_metrics.metrics.matching import TOLERANCES, match_structures
from crystal_metrics.results import MATCH_COLUMNS
from support import (
    BROKEN_DIR,
    MP20_DIR,
    TRANSFORMS,
    VAL_CSV,
    caesium_chloride,
    rock_salt,
    write_cifs,
)

MATCH_KEYS = {"match_rate", "rmse", "n_ref", "n_gen", "n_matched", "k", "pair_by",
              "n_invalid_predictions", "match_errors", "tolerances", "n_read_errors",
              "read_errors"}
# CsCl-type NaCl, a = 4 Å, with Cl moved 0.2 Å: after removing the mean shift the two atoms
# are 0.1 Å off, so the RMS distance is 0.1 Å / (V/n)^(1/3) = 0.1 / (64/2)^(1/3).
SHIFT_RMS = 0.1 / 32 ** (1 / 3)


def as_set(*crystals) -> StructureSet:
    return StructureSet([f"s{i}" for i in range(len(crystals))], list(crystals))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def valid_examples(examples):
    keep = np.flatnonzero(validity(examples.crystals).overall)
    return StructureSet([examples.names[i] for i in keep], [examples.crystals[i] for i in keep])


def test_every_structure_matches_itself(valid_examples):
    result = match_structures(valid_examples, valid_examples, workers=1)
    assert result.match_rate == 1.0 and result.rmse < 1e-12
    assert result.pairing.by == "order" and result.k_summary() == 1
    assert result.n_invalid == 0 and not result.errors


def test_rms_of_a_displaced_atom_is_worked_out_by_hand():
    reference, displaced = caesium_chloride(), caesium_chloride(shift=0.2)
    result = match_structures(as_set(displaced), as_set(reference))
    assert result.rmse == pytest.approx(SHIFT_RMS, rel=1e-9)
    direct = StructureMatcher(**TOLERANCES).get_rms_dist(displaced.to_pymatgen(),
                                                         reference.to_pymatgen())
    assert result.rmse == pytest.approx(direct[0], rel=1e-12)


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_equivalent_descriptions_match(valid_examples, transform):
    crystal = valid_examples.crystals[3]
    result = match_structures(as_set(TRANSFORMS[transform](crystal)), as_set(crystal))
    assert result.match_rate == 1.0 and result.rmse < 1e-6


def test_different_structure_of_the_same_composition_does_not_match():
    result = match_structures(as_set(rock_salt()), as_set(caesium_chloride(5.64 / 2 ** (2 / 3))))
    assert result.match_rate == 0.0 and result.rmse is None
    assert result.n_invalid == 0


def test_invalid_predictions_count_as_unmatched(examples):
    too_close = Crystal.checked(np.eye(3) * 3.0, [[0, 0, 0], [0.1, 0, 0]], [11, 17])  # 0.3 Å
    uncharged = examples.crystals[examples.names.index("mp-21383")]  # EuSi2Rh2 fails SMACT
    for crystal in (too_close, uncharged):
        result = match_structures(as_set(crystal), as_set(crystal))
        assert result.match_rate == 0.0 and result.n_invalid == 1


def test_best_of_k_by_manifest_id(tmp_path):
    """Two samples per reference, paired through manifest.csv's source_id."""
    gen = write_cifs(tmp_path / "gen", {
        "cscl_0": rock_salt(), "cscl_1": caesium_chloride(shift=0.2),           # bad, good
        "nacl_0": TRANSFORMS["rotation"](rock_salt()), "nacl_1": caesium_chloride(),  # good, bad
        "kcl_0": caesium_chloride(numbers=(19, 17)), "kcl_1": caesium_chloride(3.9, (19, 17))})
    (gen / "manifest.csv").write_text("name,composition,source_id,seed\n" + "".join(
        f"{ref}_{k},x,{ref},0\n" for ref in ("cscl", "nacl", "kcl") for k in (0, 1)))
    ref = write_cifs(tmp_path / "ref", {"cscl": caesium_chloride(), "nacl": rock_salt(),
                                        "kcl": rock_salt(6.29, (19, 17))})
    result = cm.match(gen, ref)
    assert result.pairing.by == "id" and result.k_summary() == 2
    assert result.match_rate == pytest.approx(2 / 3)
    assert result.rmse == pytest.approx(SHIFT_RMS / 2, rel=1e-9)   # mean of SHIFT_RMS and 0
    assert list(result.matched) == [True, False, True]  # REF order: cscl, kcl, nacl

    result = run("match", gen, ref, "--json", tmp_path / "m.json", "--per-structure",
                 tmp_path / "m.csv")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "m.json").read_text())
    assert set(data) == MATCH_KEYS
    assert (data["n_ref"], data["n_gen"], data["n_matched"], data["k"]) == (3, 6, 2, 2)
    assert data["pair_by"] == "id" and data["tolerances"] == {"stol": 0.5, "angle_tol": 10,
                                                               "ltol": 0.3}
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0].split(",") == list(MATCH_COLUMNS) and len(lines) == 7
    assert f"cscl_1,cscl,True,True,{SHIFT_RMS:.6g}," in lines

    # a listed sample without its file is an unmatched read error; an unlisted file a stray
    (gen / "kcl_1.cif").rename(gen / "old_sample.cif")
    result = run("match", gen, ref, "--json", tmp_path / "m2.json")
    assert result.exit_code == 0, result.output
    assert "unreadable gen:kcl_1: listed in manifest.csv, but there is no file" in result.output
    assert (f"warning: {gen}: 1 structure file(s) not listed in manifest.csv are left out "
            "(old_sample.cif)") in result.output
    data = json.loads((tmp_path / "m2.json").read_text())
    assert (data["n_gen"], data["n_matched"], data["k"], data["n_read_errors"]) == (5, 2, 2, 1)


def test_pairing_by_name_without_manifest(tmp_path):
    gen = write_cifs(tmp_path / "gen", {"b": rock_salt(), "a": caesium_chloride(shift=0.2)})
    ref = write_cifs(tmp_path / "ref", {"a": caesium_chloride(), "b": rock_salt(),
                                        "c": rock_salt(5.0)})
    result = cm.match(gen, ref, pair_by="id")
    assert result.k_summary() == {"min": 0, "max": 1} and result.match_rate == pytest.approx(2 / 3)
    with pytest.raises(PairingError, match="2 generated, 3 references"):
        cm.match(gen, ref)  # no manifest: by order
    result = run("match", gen, ref)
    assert result.exit_code == 1 and "2 generated, 3 references" in result.output


def test_pairing_by_order_needs_equal_counts(tmp_path, examples):
    with pytest.raises(PairingError, match="one generated structure per reference: 40 generated, "
                                           "39 references"):
        match_structures(examples, as_set(*examples.crystals[:39]))
    result = run("match", MP20_DIR, VAL_CSV, "--pair-by", "id")
    assert result.exit_code == 1 and "no reference of that name in REF for mp-1017559" in result.output


def test_pymatgen_failure_is_unmatched_and_reported(monkeypatch):
    def fail(self, struct1, struct2):
        raise ValueError("degenerate")

    monkeypatch.setattr(StructureMatcher, "get_rms_dist", fail)
    result = match_structures(as_set(rock_salt()), as_set(rock_salt()))
    assert result.match_rate == 0.0
    assert [e.as_dict() for e in result.errors] == [
        {"name": "s0", "reason": "StructureMatcher failed: ValueError: degenerate"}]


def test_parallel_matching_equals_serial(valid_examples):
    rng = np.random.default_rng(0)
    noisy = StructureSet(valid_examples.names, [
        Crystal.checked(c.lattice, c.frac_coords + rng.normal(0, 0.01, c.frac_coords.shape),
                        c.numbers) for c in valid_examples.crystals])
    serial = match_structures(noisy, valid_examples, workers=1)
    parallel = match_structures(noisy, valid_examples, workers=2)
    np.testing.assert_array_equal(serial.sample_rms, parallel.sample_rms)
    assert 0 < serial.rmse < 0.1


def test_match_cli_errors(tmp_path):
    assert run("match", MP20_DIR, tmp_path / "missing").exit_code == 1
    out = tmp_path / "m.json"
    out.write_text("precious")
    result = run("match", MP20_DIR, MP20_DIR, "--json", out)
    assert result.exit_code == 2 and "exists" in result.output and out.read_text() == "precious"
    assert run("match", MP20_DIR, MP20_DIR, "--pair-by", "name").exit_code == 2
    result = run("match", BROKEN_DIR, BROKEN_DIR)
    assert result.exit_code == 1
    assert "pairing by order needs every structure readable, but GEN corrupt" in result.output
