import json
import os

import pytest
from click.testing import CliRunner

from crystal_metrics import density_emd, validity
from crystal_metrics.cli import main
from crystal_metrics.results import PER_STRUCTURE_COLUMNS
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


def _no_work(monkeypatch):
    """Reading a structure set fails the test: the command must stop before any work."""
    import crystal_metrics.cli

    monkeypatch.setattr(crystal_metrics.cli, "read_structures",
                        lambda *a, **k: pytest.fail("structures were read"))


@pytest.mark.parametrize("option", ["--json", "--per-structure"])
def test_read_only_output_folder_exits_2_before_any_work(read_only_dir, monkeypatch, option):
    _no_work(monkeypatch)
    out = read_only_dir / "out.json"
    result = run("validity", MP20_DIR, option, out)
    assert result.exit_code == 2 and "Traceback" not in result.output
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert result.output == f"Error: cannot write {out}: {reason} in {read_only_dir}\n"
    assert list(read_only_dir.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--json", "{t}/same", "--per-structure", "{t}/same"],
     "--per-structure {t}/same is also the file of --json"),
    (["--json", "{t}/./x/../same", "--per-structure", "{t}/same"],
     "--per-structure {t}/same is also the file of --json"),
    (["--per-structure", str(VAL_CSV), "--overwrite"], f"--per-structure {VAL_CSV} is also input"),
])
def test_two_outputs_or_an_input_naming_the_same_file_exit_2(tmp_path, monkeypatch, args, message):
    _no_work(monkeypatch)
    (tmp_path / "x").mkdir()
    before = VAL_CSV.read_bytes()
    result = run("validity", VAL_CSV, *[a.format(t=tmp_path) for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("Error: " + message.format(t=tmp_path))
    assert result.output.endswith(": give every output its own file\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"] and VAL_CSV.read_bytes() == before


def test_a_write_failing_at_the_end_is_named_and_the_others_are_kept(tmp_path, read_only_dir,
                                                                      monkeypatch):
    import crystal_metrics.cli

    # the folder becomes read-only after the check (as a full disk or a lost mount would)
    monkeypatch.setattr(crystal_metrics.cli, "check_writable", lambda *a, **k: None)
    out, table = tmp_path / "v.json", read_only_dir / "v.csv"
    result = run("validity", MP20_DIR, "--per-structure", table, "--json", out)
    assert result.exit_code == 1 and "Traceback" not in result.output
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert f"error: cannot write {table}: {reason} in {read_only_dir}\n" in result.output
    assert result.output.endswith(f"Error: could not write {table} (reason above); the other "
                                  "results were written\n")
    assert "overall        0.9750  (39/40)" in result.output
    assert json.loads(out.read_text())["n_valid"] == 39 and not table.exists()


def test_an_unreadable_file_is_an_error_record_in_the_json(tmp_path, make_unreadable):
    import shutil

    shutil.copytree(MP20_DIR, tmp_path / "gen")
    locked = make_unreadable(min((tmp_path / "gen").glob("*.cif")))
    result = run("validity", tmp_path / "gen", "--json", tmp_path / "v.json")
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert f"unreadable {locked.stem}: cannot read the file: Permission denied" in result.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["n_structures"] == 39 and data["read_errors"] == [
        {"name": locked.stem, "reason": "cannot read the file: Permission denied"}]


def test_a_symbolic_link_loop_as_path_is_named(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    result = run("validity", tmp_path / "loop")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.endswith(
        f"  unreadable {tmp_path / 'loop'}: symbolic link loop (the link leads back to itself)\n"
        f"Error: no readable structures in {tmp_path / 'loop'}\n")
