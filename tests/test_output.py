import pytest

from crystal_metrics import OutputExistsError
from crystal_metrics.io import atomic_write_text, output, write_csv


def test_write_refuses_to_clobber(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "first")
    with pytest.raises(OutputExistsError, match="out.txt exists"):
        atomic_write_text(path, "second")
    assert path.read_text() == "first"
    atomic_write_text(path, "second", overwrite=True)
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_file_appearing_during_the_write_is_not_clobbered(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    original = output.check_writable

    def check_then_race(p, overwrite=False):
        original(p, overwrite)
        path.write_text("written by someone else meanwhile")

    monkeypatch.setattr(output, "check_writable", check_then_race)
    with pytest.raises(OutputExistsError):
        atomic_write_text(path, "mine")
    assert path.read_text() == "written by someone else meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_csv_rows(tmp_path):
    write_csv(tmp_path / "t.csv", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,x\n2,y\n"


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
