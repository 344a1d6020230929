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
    pd.DataFrame({"name": ["a"], "seed": [1]}).to_csv(tmp_path / "manifest.csv", index=False)
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
