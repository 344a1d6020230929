import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from crystal_metrics import Crystal, StructureError, read_structures
from crystal_metrics.io import reading
from support import BROKEN_DIR, MP20_DIR, VAL_CSV, rock_salt

FIRST_CIF = min(MP20_DIR.glob("*.cif"))
BROKEN_REASONS = {
    "corrupt": "corrupt CIF: line 3: unterminated 'string'",
    "empty": "empty CIF",
    "nan_coordinates": "coordinates contain NaN or infinite values",
    "not_a_cif": "corrupt CIF: line 1: expected block header (data_)",
    "partial_occupancy": "disordered site: Cu with occupancy 0.5",
}


def _same_crystal(a: Crystal, b: Crystal, atol=1e-5):
    np.testing.assert_allclose(a.lattice, b.lattice, atol=atol)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    diff = a.frac_coords - b.frac_coords
    np.testing.assert_allclose(diff - np.round(diff), 0, atol=atol)


def test_folder_of_cifs_named_by_file(examples):
    assert len(examples) == 40 and not examples.errors
    assert examples.names == sorted(p.stem for p in MP20_DIR.glob("*.cif"))


def test_fast_cif_path_agrees_with_pymatgen(examples):
    from pymatgen.core import Structure

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, crystal in zip(examples.names, examples.crystals):
            reference = Crystal.from_pymatgen(Structure.from_file(MP20_DIR / f"{name}.cif"))
            _same_crystal(crystal, reference)


def test_symmetrised_cif_goes_through_pymatgen(tmp_path):
    from pymatgen.io.cif import CifWriter

    CifWriter(rock_salt().to_pymatgen(), symprec=0.01).write_file(tmp_path / "nacl.cif")
    assert "Fm-3m" in (tmp_path / "nacl.cif").read_text()  # 2 sites in the file, 8 atoms
    (crystal,) = read_structures(tmp_path / "nacl.cif").crystals
    assert crystal.n_atoms == 8 and crystal.volume == pytest.approx(5.64 ** 3)


def test_csv_named_by_material_id_plain_and_gzipped(tmp_path):
    table = pd.read_csv(VAL_CSV)
    plain = read_structures(VAL_CSV)
    assert plain.names == table.material_id.tolist() and len(plain) == 40
    with open(VAL_CSV, "rb") as src, gzip.open(tmp_path / "val.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    zipped = read_structures(tmp_path / "val.csv.gz")
    assert zipped.names == plain.names
    for a, b in zip(plain.crystals, zipped.crystals):
        _same_crystal(a, b, atol=0)


def test_csv_without_material_id_is_named_by_row(tmp_path):
    pd.read_csv(VAL_CSV)[["cif"]].head(3).to_csv(tmp_path / "rows.csv", index=False)
    assert read_structures(tmp_path / "rows.csv").names == ["0", "1", "2"]


def test_multi_block_cif_named_by_block(tmp_path):
    files = sorted(MP20_DIR.glob("*.cif"))[:3]
    (tmp_path / "many.cif").write_text("\n".join(p.read_text() for p in files))
    direct = read_structures(tmp_path / "many.cif")
    blocks = [p.read_text().split("data_")[1].split()[0] for p in files]
    assert direct.names == blocks
    in_folder = read_structures(tmp_path)
    assert in_folder.names == [f"many:{b}" for b in blocks]


def test_extxyz_and_ase_and_pymatgen_objects(tmp_path, nacl):
    from ase.io import write

    atoms = nacl.to_pymatgen().to_ase_atoms()
    write(tmp_path / "frames.extxyz", [atoms, atoms], format="extxyz")
    from_file = read_structures(tmp_path / "frames.extxyz")
    assert from_file.names == ["0", "1"]
    _same_crystal(from_file.crystals[0], nacl)
    from_objects = read_structures([atoms, nacl.to_pymatgen(), nacl])
    assert from_objects.names == ["0", "1", "2"] and not from_objects.errors
    for crystal in from_objects.crystals:
        _same_crystal(crystal, nacl)


def test_mixed_folder(tmp_path, nacl):
    from ase.io import write

    shutil.copy(FIRST_CIF, tmp_path / "one.cif")
    shutil.copy(VAL_CSV, tmp_path / "val.csv")
    write(tmp_path / "x.extxyz", nacl.to_pymatgen().to_ase_atoms(), format="extxyz")
    pd.DataFrame({"label": ["a"], "seed": [1]}).to_csv(tmp_path / "notes.csv", index=False)
    result = read_structures(tmp_path)
    assert not result.errors and len(result) == 42
    assert result.names[0] == "one" and result.names[1].startswith("val:mp-")
    assert result.names[-1] == "x:0"


def test_parallel_parsing_matches_serial(monkeypatch):
    serial = read_structures(VAL_CSV, workers=1)
    monkeypatch.setattr(reading, "PARALLEL_MIN_TEXTS", 2)
    parallel = read_structures(VAL_CSV, workers=2)
    assert parallel.names == serial.names
    for a, b in zip(parallel.crystals, serial.crystals):
        _same_crystal(a, b, atol=0)


def test_every_broken_file_is_reported_and_the_rest_is_read():
    result = read_structures(BROKEN_DIR)
    assert result.names == ["good"]
    reasons = {e.name: e.reason for e in result.errors}
    assert {k: reasons[k] for k in BROKEN_REASONS} == BROKEN_REASONS
    assert reasons["zero_volume"].startswith("singular lattice")


def test_strict_names_the_first_bad_structure():
    with pytest.raises(StructureError, match="^corrupt: corrupt CIF"):
        read_structures(BROKEN_DIR, strict=True)


@pytest.mark.parametrize("make, reason", [
    (lambda p: p / "missing", "path does not exist"),
    (lambda p: p, "no structure files"),
    (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "unsupported file type"),
    (lambda p: (p / "t.csv").write_text("a,b\n1,2\n") and p / "t.csv", "CSV has no 'cif' column"),
    (lambda p: (p / "t.csv.gz").write_bytes(b"not gzip") and p / "t.csv.gz", "cannot read CSV"),
    (lambda p: (p / "t.extxyz").write_text("2\nbad\nH 0 0\n") and p / "t.extxyz",
     "cannot read extxyz"),
])
def test_bad_paths_become_error_records(tmp_path, make, reason):
    result = read_structures(make(tmp_path))
    assert len(result) == 0 and len(result.errors) == 1
    assert reason in result.errors[0].reason


def test_bad_rows_and_objects_are_named(tmp_path, nacl):
    good = pd.read_csv(VAL_CSV).cif[0]
    pd.DataFrame({"material_id": ["ok", "blank", "junk"], "cif": [good, "", "data_x\n_cell_length_a 1\n"]}
                 ).to_csv(tmp_path / "t.csv", index=False)
    result = read_structures(tmp_path / "t.csv")
    assert result.names == ["ok"]
    assert [(e.name, e.reason) for e in result.errors] == [
        ("blank", "empty CIF"), ("junk", "missing or non-numeric _cell_length_b")]
    from ase import Atoms
    from pymatgen.core import Lattice, Structure

    disordered = Structure(Lattice.cubic(3), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    molecule = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])
    objects = read_structures([nacl, disordered, molecule, "not a structure"])
    assert objects.names == ["0"]
    assert [e.name for e in objects.errors] == ["1", "2", "3"]
    assert "disordered" in objects.errors[0].reason and "periodic" in objects.errors[1].reason


@pytest.mark.parametrize("lattice, frac, numbers, reason", [
    (np.eye(3), np.zeros((0, 3)), [], "no atoms"),
    (np.full((3, 3), np.inf), [[0, 0, 0]], [1], "lattice has NaN"),
    ([[1, 0, 0], [2, 0, 0], [0, 0, 1]], [[0, 0, 0]], [1], "singular lattice"),
    (np.eye(3), [[0, 0, 0]], [0], "unknown element"),
    (np.eye(3), [[0, 0, 0]], [1, 1], "2 species for 1 coordinates"),
])
def test_crystal_checks(lattice, frac, numbers, reason):
    with pytest.raises(StructureError, match=reason):
        Crystal.checked(lattice, frac, numbers)


def test_duplicate_names_are_made_unique(tmp_path):
    shutil.copy(FIRST_CIF, tmp_path / "x.cif")
    shutil.copy(FIRST_CIF, tmp_path / "x.CIF")
    assert read_structures(tmp_path).names == ["x#1", "x#2"]


def test_duplicate_block_names_are_a_corrupt_cif(tmp_path):
    text = FIRST_CIF.read_text()
    (tmp_path / "twice.cif").write_text(text + "\n" + text)
    (error,) = read_structures(tmp_path / "twice.cif").errors
    assert error.name == "twice" and "duplicate block name" in error.reason


def test_sites_named_by_label_only(tmp_path):
    text = FIRST_CIF.read_text().replace(" _atom_site_type_symbol\n", "")
    lines = [line.split(None, 1)[1] if line.startswith("  ") and line.split()[0].isalpha()
             and len(line.split()) == 7 else line for line in text.splitlines()]
    (tmp_path / "labels.cif").write_text("\n".join(lines))
    (crystal,) = read_structures(tmp_path / "labels.cif").crystals
    (reference,) = read_structures(FIRST_CIF).crystals
    _same_crystal(crystal, reference, atol=0)


def test_an_unreadable_file_is_a_record_and_the_rest_is_read(tmp_path, make_unreadable):
    shutil.copytree(MP20_DIR, tmp_path / "gen")
    locked = make_unreadable(tmp_path / "gen" / FIRST_CIF.name)
    result = read_structures(tmp_path / "gen")
    assert len(result) == 39 and [e.as_dict() for e in result.errors] == [
        {"name": locked.stem, "reason": "cannot read the file: Permission denied"}]


@pytest.mark.parametrize("link, reason", [
    ("loop", "symbolic link loop (the link leads back to itself)"),
    ("dangling", "broken symbolic link (to nowhere.cif, which does not exist)"),
])
def test_a_bad_symbolic_link_is_named_for_what_it_is(tmp_path, link, reason):
    folder = tmp_path / "gen"
    folder.mkdir()
    shutil.copy(FIRST_CIF, folder / "good.cif")
    (folder / "bad.cif").symlink_to("bad.cif" if link == "loop" else "nowhere.cif")
    result = read_structures(folder / "bad.cif")  # as PATH
    assert len(result) == 0 and [e.as_dict() for e in result.errors] == [
        {"name": str(folder / "bad.cif"), "reason": reason}]
    result = read_structures(folder)  # inside a folder
    assert result.names == ["good"] and [e.as_dict() for e in result.errors] == [
        {"name": "bad", "reason": reason}]


def test_a_sample_folder_gives_what_its_manifest_lists_and_warns_about_strays(tmp_path):
    folder = tmp_path / "samples"
    shutil.copytree(MP20_DIR, folder)
    names = sorted(p.stem for p in MP20_DIR.glob("*.cif"))
    listed = names[:5] + ["lost_sample"]  # e.g. an earlier run's CIFs left beside 5 new ones
    pd.DataFrame({"name": listed, "composition": "x", "source_id": "", "seed": 0}).to_csv(
        folder / "manifest.csv", index=False)
    with pytest.warns(reading.ManifestWarning) as caught:
        result = read_structures(folder)
    assert result.names == names[:5]
    assert [e.as_dict() for e in result.errors] == [{"name": "lost_sample", "reason": (
        "listed in manifest.csv, but there is no file for it in the folder")}]
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{folder}: 35 structure file(s) not listed in manifest.csv are left out "
        f"({', '.join(n + '.cif' for n in names[5:10])}, ...)")


def test_a_manifest_without_a_name_column_or_unreadable_changes_nothing(tmp_path, make_unreadable):
    folder = tmp_path / "samples"
    shutil.copytree(MP20_DIR, folder)
    (folder / "manifest.csv").write_text("composition,seed\nLiFeO2,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_structures(folder)) == 40
    (folder / "manifest.csv").write_text("name,seed\nx,0\n")
    make_unreadable(folder / "manifest.csv")
    with pytest.warns(reading.ManifestWarning, match="manifest.csv .*every structure file"):
        assert len(read_structures(folder)) == 40


ANGLE_RANGE = "a cell angle must lie between 0 and 180 degrees"


@pytest.mark.parametrize("symmetrised", [False, True])
@pytest.mark.parametrize("tag, value, reason", [
    ("_cell_length_a", "-5.64", "_cell_length_a is -5.64: a cell length must be positive"),
    ("_cell_length_c", "0", "_cell_length_c is 0: a cell length must be positive"),
    ("_cell_angle_beta", "-90", f"_cell_angle_beta is -90: {ANGLE_RANGE}"),
    ("_cell_angle_gamma", "180.0", f"_cell_angle_gamma is 180.0: {ANGLE_RANGE}"),
])
def test_cell_parameters_outside_the_cif_ranges_are_read_errors(tmp_path, symmetrised, tag,
                                                                  value, reason):
    # gemmi, pymatgen and ASE all accept a negative length (flipping that lattice vector)
    import re

    from pymatgen.io.cif import CifWriter

    CifWriter(rock_salt().to_pymatgen(), symprec=0.01 if symmetrised else None).write_file(
        tmp_path / "nacl.cif")
    text = (tmp_path / "nacl.cif").read_text()
    (tmp_path / "nacl.cif").write_text(re.sub(rf"({tag}\s+)\S+", rf"\g<1>{value}", text))
    result = read_structures(tmp_path)
    assert len(result) == 0 and [e.as_dict() for e in result.errors] == [
        {"name": "nacl", "reason": reason}]


def test_a_left_handed_lattice_is_fine(nacl):
    # the mirror image of a structure, given as a matrix: the same distances, so it is valid
    from crystal_metrics import validity

    flipped = Crystal.checked(nacl.lattice * [[-1], [1], [1]], nacl.frac_coords, nacl.numbers)
    assert np.linalg.det(flipped.lattice) < 0
    result = validity(read_structures([flipped]))
    assert result.overall.all() and result.min_distance[0] == pytest.approx(5.64 / 2)
