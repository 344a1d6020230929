import json

import pytest
from click.testing import CliRunner

from crystal_metrics import density_emd, validity
from crystal_metrics.cli import PER_STRUCTURE_COLUMNS, main
from support import BROKEN_DIR, MP20_DIR, VAL_CSV

VALIDITY_KEYS = {"n_structures", "n_read_errors", "read_errors", "n_valid", "validity",
                 "oxidation_states"}
DENSITY_KEYS = {"n_gen", "n_ref", "n_read_errors", "read_errors", "density_emd", "n_elements_emd",
                "valid_only", "n_samples", "seed", "n_scored", "scored"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validity_json_and_per_structure_csv(tmp_path):
    result = run("validity", MP20_DIR, "--json", tmp_path / "v.json", "--per-structure",
                 tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert set(data) == VALIDITY_KEYS
    expected = validity(MP20_DIR)
    assert data["n_structures"] == 40 and data["n_valid"] == expected.n_valid
    assert data["validity"] == expected.fractions() and data["oxidation_states"] == "smact221"
    assert "overall" in result.output and f"({expected.n_valid}/40)" in result.output
    lines = (tmp_path / "v.csv").read_text().splitlines()
    assert lines[0].split(",") == list(PER_STRUCTURE_COLUMNS) and len(lines) == 41


def test_density_json(tmp_path):
    result = run("density", MP20_DIR, VAL_CSV, "--json", tmp_path / "d.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "d.json").read_text())
    assert set(data) == DENSITY_KEYS
    assert data["density_emd"] == pytest.approx(density_emd(MP20_DIR, VAL_CSV))
    assert (data["n_gen"], data["n_ref"], data["n_scored"]) == (40, 40, 40)
    assert (data["valid_only"], data["n_samples"], data["seed"]) == (False, None, None)
    assert "GEN scored            all 40 readable" in result.output


def test_bad_input_is_reported_not_raised(tmp_path):
    result = run("validity", BROKEN_DIR, "--json", tmp_path / "b.json", "--per-structure",
                 tmp_path / "b.csv")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert "unreadable partial_occupancy: disordered site" in result.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["n_structures"] == 1 and data["n_read_errors"] == 6
    assert {e["name"] for e in data["read_errors"]} >= {"corrupt", "zero_volume"}
    blanks = "," * (len(PER_STRUCTURE_COLUMNS) - 1)
    assert f"partial_occupancy{blanks}disordered site" in (tmp_path / "b.csv").read_text()


def test_density_errors_are_named_by_set(tmp_path):
    result = run("density", BROKEN_DIR, MP20_DIR, "--json", tmp_path / "d.json")
    assert result.exit_code == 0, result.output
    names = [e["name"] for e in json.loads((tmp_path / "d.json").read_text())["read_errors"]]
    assert "gen:corrupt" in names and not any(n.startswith("ref:") for n in names)


def test_strict_exits_1_naming_the_structure():
    result = run("validity", BROKEN_DIR, "--strict")
    assert result.exit_code == 1 and "corrupt: corrupt CIF" in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("path", ["does/not/exist", "empty_dir"])
def test_nothing_readable_exits_1(tmp_path, path):
    (tmp_path / "empty_dir").mkdir()
    result = run("validity", tmp_path / path)
    assert result.exit_code == 1 and "no readable structures" in result.output
    result = run("density", MP20_DIR, tmp_path / path)
    assert result.exit_code == 1 and "no readable structures in REF" in result.output


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "v.json"
    out.write_text("precious")
    result = run("validity", MP20_DIR, "--json", out)
    assert result.exit_code == 2 and "exists" in result.output
    assert out.read_text() == "precious"
    assert run("validity", MP20_DIR, "--json", out, "--overwrite").exit_code == 0
    assert json.loads(out.read_text())["n_structures"] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json"]  # no temporary files left


def test_usage_errors_exit_2(tmp_path):
    assert run("validity").exit_code == 2
    assert run("validity", MP20_DIR, "--bogus").exit_code == 2
    result = run("validity", MP20_DIR, "--json", tmp_path / "missing_dir" / "v.json")
    assert result.exit_code == 2 and "does not exist" in result.output
