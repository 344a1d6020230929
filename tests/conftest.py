"""Fixtures shared by the crystal_metrics tests (helpers live in support.py)."""
import errno
import os
import pathlib
import tempfile

import pytest

from support import MP20_DIR, rock_salt

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def cache_in_tmp(tmp_path_factory):
    """An empty crystal-metrics cache folder (CRYSTAL_METRICS_CACHE) for a whole test module:
    `pytestmark = pytest.mark.usefixtures("cache_in_tmp")`."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRYSTAL_METRICS_CACHE", str(cache))
        yield cache


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty crystal-metrics cache folder for one test."""
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def matminer():
    """matminer (the [coverage] extra), or the test is skipped."""
    return pytest.importorskip("matminer")


@pytest.fixture
def nacl():
    return rock_salt()


@pytest.fixture(scope="session")
def examples():
    from crystal_metrics import read_structures

    return read_structures(MP20_DIR)


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A folder in which no file can be created: mode 555, or, when the tests run as root (whom
    permissions do not stop), one where creating a file fails as on a read-only file system."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if not IS_ROOT:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.realpath(dir) == os.path.realpath(folder):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(folder))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    yield folder


@pytest.fixture
def make_unreadable(monkeypatch):
    """make_unreadable(path): reading the file fails with 'Permission denied' (mode 000, or, as
    root, a failing read of that path)."""
    made = []

    def make(path):
        path = pathlib.Path(path)
        if not IS_ROOT:
            path.chmod(0)
            made.append(path)
            return path
        real = pathlib.Path.read_bytes

        def read_bytes(self):
            if os.path.realpath(self) == os.path.realpath(path):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self)

        monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
        return path

    yield make
    for path in made:
        path.chmod(0o644)
