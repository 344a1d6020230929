"""Fixtures shared by the crystal_metrics tests (helpers live in support.py)."""
import pytest

from support import MP20_DIR, rock_salt


@pytest.fixture
def nacl():
    return rock_salt()


@pytest.fixture(scope="session")
def examples():
    from crystal_metrics import read_structures

    return read_structures(MP20_DIR)
