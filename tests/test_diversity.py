"""CDVAE's composition and structure diversity: worked by hand on tiny sets, invariance, the
valid-only subset, error paths (agreement with CDVAE's own GenEval: test_protocols.py)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.distance import pdist

from crystal_metrics import Crystal, CrystalMetricsError, Selection, diversity, read_structures
from crystal_metrics.cli import main
from crystal_metrics.features.fingerprints import Fingerprints
from crystal_metrics.metrics import diversity as diversity_module
from crystal_metrics.metrics.diversity import fingerprint_diversity, mean_pairwise_distance
from support import MP20_DIR, TRANSFORMS, rock_salt, write_cifs

#: A one-element crystal of Og: compositionally and structurally valid, but CrystalNN fails.
OGANESSON = Crystal.checked(np.eye(3) * 4, [[0, 0, 0]], [118])


pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _fingerprints(structure, composition) -> Fingerprints:
    structure, composition = np.array(structure, float), np.array(composition, float)
    return Fingerprints(structure, composition, np.arange(len(structure)), {})


@pytest.mark.parametrize("structure, composition, struct_div, comp_div", [
    # two structures: the one distance
    ([[0.0, 0.0]], [[1.0]], None, None),
    ([[0.0, 0.0], [3.0, 4.0]], [[1.0], [3.0]], 5.0, 2.0),
    # three: the pairs 3, 4, 5 (a 3-4-5 triangle) and 1, 1, 2 on a line
    ([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], [[0.0], [1.0], [2.0]], 4.0, 4 / 3),
    # four identical structures: 0
    ([[1.0, 2.0]] * 4, [[5.0]] * 4, 0.0, 0.0),
])
def test_hand_worked(structure, composition, struct_div, comp_div):
    fp = _fingerprints(structure, composition)
    if struct_div is None:
        with pytest.raises(CrystalMetricsError, match="at least 2 fingerprinted structures, got 1"):
            fingerprint_diversity(fp)
        return
    assert fingerprint_diversity(fp) == pytest.approx({"comp_div": comp_div,
                                                       "struct_div": struct_div})


def test_blocks_give_scipys_pdist_mean(monkeypatch):
    points = np.random.default_rng(0).normal(size=(23, 7))
    expected = pdist(points).mean()  # CDVAE's get_fp_pdist
    assert mean_pairwise_distance(points) == pytest.approx(expected, rel=1e-13)
    monkeypatch.setattr(diversity_module, "BLOCK_ROWS", 5)
    assert mean_pairwise_distance(points) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("name", ["permutation", "change_of_basis"])  # more: test_coverage.py
def test_invariant_under_symmetry_transforms(matminer, examples, name):
    crystals = examples.crystals[:4]
    moved = [TRANSFORMS[name](c) for c in crystals]
    original, transformed = diversity(crystals, workers=1), diversity(moved, workers=1)
    assert transformed["comp_div"] == pytest.approx(original["comp_div"], rel=1e-12)
    assert transformed["struct_div"] == pytest.approx(original["struct_div"], abs=1e-8)


def test_valid_only_leaves_out_invalid_and_unfingerprintable_structures_before_the_draw(matminer):
    nacl, kcl = rock_salt(), rock_salt(6.29, (19, 17))
    squeezed, nacl2 = rock_salt(0.9), Crystal.checked(np.eye(3) * 9, [[0, 0, 0], [.3, .3, .3],
                                                                      [.6, .6, .6]], [11, 17, 17])
    crystals = [nacl, squeezed, OGANESSON, kcl, nacl2]
    result = diversity(crystals, Selection(valid_only=True), workers=1)
    # valid: NaCl, Og, KCl; Og's fingerprint fails, so only NaCl and KCl remain (one pair)
    expected = diversity([nacl, kcl], workers=1)
    assert (result["comp_div"], result["struct_div"]) == (expected["comp_div"],
                                                          expected["struct_div"])
    assert result["scored"] == "the 2 valid of 5 readable" and result["n_scored"] == 2
    assert result["n_fingerprint_errors"] == 1
    assert result["fingerprint_errors"][0]["name"] == "2"
    assert result["fingerprint_errors"][0]["reason"].startswith("fingerprint failed")
    with pytest.raises(CrystalMetricsError, match="GEN has 2 valid structures, fewer than the 3"):
        diversity(crystals, Selection(valid_only=True, n_samples=3), workers=1)


def test_cli_json_and_errors(matminer, tmp_path):
    folder = tmp_path / "gen"  # 10 example structures, one of them (mp-21383) SMACT-invalid
    folder.mkdir()
    for cif in sorted(MP20_DIR.glob("*.cif"))[16:26]:
        (folder / cif.name).write_text(cif.read_text())
    out = tmp_path / "d.json"
    result = run("diversity", folder, "--valid-only", "--n-samples", 6, "--seed", 2,
                 "--workers", 1, "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert {"comp_div", "struct_div", "valid_only", "n_samples", "seed", "n_scored", "scored",
            "n_valid", "oxidation_states", "n_structures", "n_read_errors", "read_errors",
            "n_fingerprint_errors", "fingerprint_errors"} == set(data)
    assert data["scored"] == "6 drawn at random (seed 2) from the 9 valid of 10 readable"
    structures = read_structures(folder)
    valid = np.array([name != "mp-21383" for name in structures.names])
    keep = Selection(True, 6, 2).indices(10, valid)
    subset = diversity([structures.crystals[i] for i in keep], workers=1)
    assert data["comp_div"] == pytest.approx(subset["comp_div"], rel=1e-12)
    assert f"composition diversity  {data['comp_div']:.4f}" in result.output
    result = run("diversity", folder, "--valid-only", "--n-samples", 10)
    assert result.exit_code == 2
    assert "Error: GEN has 9 valid structures, fewer than the 10 asked for" in result.output
    single = write_cifs(tmp_path / "one", {"nacl": rock_salt()})
    result = run("diversity", single, "--workers", 1)
    assert result.exit_code == 1
    assert "Error: diversity needs at least 2 fingerprinted structures, got 1" in result.output
    result = run("diversity", tmp_path / "missing")
    assert result.exit_code == 1 and "no readable structures" in result.output
