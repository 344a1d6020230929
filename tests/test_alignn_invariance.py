"""ALIGNN-FF features are invariant to rotation, origin shift, atom order, supercells and
atoms moved by whole cells (default whole-shell graph, shell_tol=1e-3 Å).

A very skewed basis of the same cell is not in the list: alignn rounds the lattice to 1e-5 Å,
which in such a basis moves bond lengths by up to ~5e-5 Å, and MP-20 has neighbour shells
1.006e-3 Å apart that then fall on either side of the 1e-3 Å tolerance (mp-20 test #29).
The graph itself is checked on a skewed basis with exact lattice entries (test_alignn_graph).
"""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from crystal_metrics.alignn import formation_energy_per_atom, load_extractor

DATA = Path(__file__).parent / "data" / "alignn"
N = 40


def load_fixture(n):
    with gzip.open(DATA / "mp20_test_200.json.gz", "rt") as f:
        recs = json.load(f)[:n]
    return [Structure(Lattice(r["lattice"]), r["species"], r["frac_coords"]) for r in recs]


@pytest.fixture(scope="module")
def base():
    ext = load_extractor(device="cpu")
    structs = load_fixture(N)
    lat, e = ext.embed(structs, batch_size=8)
    return ext, structs, lat, e


def _rotate(s, seed=1):
    rot = Rotation.random(random_state=seed).as_matrix()
    return Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords)


def _shift(s):
    return Structure(s.lattice, s.species, s.frac_coords + np.array([0.31, 0.47, 0.12]))


def _permute(s, seed=0):
    p = np.random.default_rng(seed).permutation(len(s))
    return Structure(s.lattice, [s.species[i] for i in p], s.frac_coords[p])


def _supercell(s):
    t = s.copy()
    t.make_supercell([2, 1, 1])
    return t


def _unwrap(s, seed=0):
    shifts = np.random.default_rng(seed).integers(-3, 4, size=(len(s), 3))
    return Structure(s.lattice, s.species, s.frac_coords + shifts)


@pytest.mark.parametrize("transform", [_rotate, _shift, _permute, _supercell, _unwrap])
def test_invariance(base, transform):
    ext, structs, lat0, e0 = base
    lat, e = ext.embed([transform(s) for s in structs], batch_size=8)
    rel = np.abs(lat - lat0).max(1) / np.abs(lat0).max(1)
    # lattice rounding to 1e-5 Å (as in jarvis-tools) leaves ~1e-5 noise
    assert rel.max() < 1e-4
    assert np.abs(e - e0).max() < 1e-4  # eV/atom


def test_exact_mode_is_not_invariant(base):
    """Documents why shell_tol defaults to 1e-3 Å: alignn's own rule splits
    degenerate shells by rounding noise, so a pure origin shift changes it."""
    _, structs, _, _ = base
    exact = load_extractor(device="cpu", shell_tol=0.0)
    _, e0 = exact.embed(structs)
    _, e1 = exact.embed([_shift(s) for s in structs])
    assert np.abs(e1 - e0).max() > 1e-3


def test_formation_energy_matches_jarvis(base):
    form_enp = pytest.importorskip("jarvis.analysis.thermodynamics.energetics").form_enp
    from jarvis.core.atoms import pmg_to_atoms

    _, structs, _, e = base
    ef = formation_energy_per_atom([s.atomic_numbers for s in structs], e)
    for s, tot, f in list(zip(structs, e, ef))[:10]:
        want = form_enp(atoms=pmg_to_atoms(s), total_energy=tot * len(s))
        assert abs(f - want) < 1e-4  # jarvis rounds to 5 decimals


def test_formation_energy_unknown_element_is_nan():
    s = Structure(Lattice.cubic(5.0), ["Po"], [[0, 0, 0]])
    assert np.isnan(formation_energy_per_atom([s.atomic_numbers], [-1.0])[0])
