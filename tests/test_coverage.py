"""Coverage COV-R / COV-P (CDVAE): hand-worked distances, invariances, agreement with matminer."""
import json
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.distance import cdist

from crystal_metrics import (
    Crystal,
    CrystalMetricsError,
    MissingExtraError,
    coverage,
    read_structures,
)
from crystal_metrics.cli import main
from crystal_metrics.features import fingerprints as fingerprint_module
from crystal_metrics.features.fingerprints import fingerprints, structure_fingerprint
from crystal_metrics.metrics import coverage as coverage_module
from crystal_metrics.metrics.coverage import coverage_scores, nearest_distances
from support import MP20_DIR, ROOT, TRANSFORMS, VAL_CSV, rock_salt

COVERAGE_KEYS = {"cov_recall", "cov_precision", "dataset", "struct_cutoff", "comp_cutoff",
                 "valid_only", "n_gen", "n_ref", "n_read_errors", "read_errors",
                 "n_fingerprint_errors", "fingerprint_errors"}
#: Og has no Magpie or CrystalNN radius data: its fingerprint fails.
UNFINGERPRINTABLE = Crystal.checked(np.eye(3) * 3, [[0, 0, 0], [.5, .5, .5]], [118, 1])
#: Two atoms 0.1 Å apart: structurally invalid, fingerprint fine.
TOO_CLOSE = Crystal.checked(np.eye(3) * 4, [[0, 0, 0], [0.025, 0, 0]], [11, 17])


@pytest.fixture(scope="module")
def matminer():
    return pytest.importorskip("matminer")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# 3 generated x 2 reference one-dimensional fingerprints. Structure: gen 0, 1, 5 and ref 0.3, 2
# (nearest ref of each gen 0.3, 0.7, 3; nearest gen of each ref 0.3, 1). Composition: gen all 0,
# ref 0 and 4 (nearest ref 0, 0, 0; nearest gen 0, 4).
GEN_S, REF_S = np.array([[0.0], [1.0], [5.0]]), np.array([[0.3], [2.0]])
GEN_C, REF_C = np.zeros((3, 1)), np.array([[0.0], [4.0]])


@pytest.mark.parametrize("struct_cutoff, comp_cutoff, n_gen, recall, precision", [
    (0.5, 3.0, None, 1 / 2, 1 / 3),   # ref 2 too far in structure; gen 1 and 2 too far
    (1.0, 3.0, None, 1 / 2, 2 / 3),   # ref 2 within 1.0 in structure but 4 > 3 in composition
    (1.0, 4.0, None, 1.0, 2 / 3),     # cutoffs are inclusive
    (1.0, 4.0, 4, 1.0, 2 / 4),        # a 4th generated structure whose fingerprint failed
    (0.1, 10.0, None, 0.0, 0.0),
])
def test_hand_worked_coverage(struct_cutoff, comp_cutoff, n_gen, recall, precision):
    scores = coverage_scores(GEN_S, GEN_C, REF_S, REF_C, struct_cutoff, comp_cutoff, n_gen)
    assert scores["cov_recall"] == pytest.approx(recall)
    assert scores["cov_precision"] == pytest.approx(precision)


def test_nearest_structure_and_composition_may_differ_as_in_cdvae():
    """A reference is covered if its nearest structure and its nearest composition are each
    within their cutoff, even when they belong to different generated structures."""
    scores = coverage_scores(np.array([[0.0], [9.0]]), np.array([[9.0], [0.0]]),
                             np.zeros((1, 1)), np.zeros((1, 1)), 1.0, 1.0)
    assert scores == {"cov_recall": 1.0, "cov_precision": 0.0}


def test_blocked_distances_equal_the_full_matrix(monkeypatch):
    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    monkeypatch.setattr(coverage_module, "BLOCK_ROWS", 3)
    to_ref, to_gen = nearest_distances(gen, ref)
    full = cdist(gen, ref)
    np.testing.assert_array_equal(to_ref, full.min(axis=1))
    np.testing.assert_array_equal(to_gen, full.min(axis=0))


def test_empty_fingerprint_set_is_an_error():
    with pytest.raises(CrystalMetricsError, match="at least one fingerprint"):
        coverage_scores(np.zeros((0, 1)), np.zeros((0, 1)), REF_S, REF_C, 1.0, 1.0)


def test_no_valid_generated_structure_is_an_error():
    with pytest.raises(CrystalMetricsError, match="GEN has no valid structures"):
        coverage([TOO_CLOSE], [rock_salt()], valid_only=True)


def test_unknown_dataset_is_an_error():
    with pytest.raises(CrystalMetricsError, match="unknown dataset 'mp-20'"):
        coverage([rock_salt()], [rock_salt()], dataset="mp-20")


def test_missing_matminer_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n.split(".")[0] == "matminer"] + ["matminer"]:
        monkeypatch.setitem(sys.modules, name, None)
    fingerprint_module.featurizers.cache_clear()
    try:
        with pytest.raises(MissingExtraError, match=r"crystal-metrics\[coverage\]"):
            coverage([rock_salt()], [rock_salt()])
        result = run("coverage", MP20_DIR, VAL_CSV)
        assert result.exit_code == 1
        assert "Error: coverage needs matminer: pip install 'crystal-metrics[coverage]'" in \
            result.output
    finally:
        fingerprint_module.featurizers.cache_clear()


def test_a_set_against_itself_is_fully_covered(matminer, examples):
    summary = coverage(examples.crystals[:4], examples.crystals[:4], workers=1)
    assert (summary["cov_recall"], summary["cov_precision"]) == (1.0, 1.0)
    assert set(summary) == COVERAGE_KEYS and (summary["n_gen"], summary["n_ref"]) == (4, 4)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_fingerprints_are_invariant(matminer, examples, transform):
    crystal = examples.crystals[0]  # EuZn2As2, 5 atoms
    result = fingerprints([crystal, TRANSFORMS[transform](crystal)], workers=1)
    np.testing.assert_allclose(result.structure[1], result.structure[0], atol=1e-9)
    np.testing.assert_allclose(result.composition[1], result.composition[0], atol=1e-12)


def test_invalid_and_unfingerprintable_generated_structures(matminer):
    nacl = rock_salt()
    summary = coverage([nacl, TOO_CLOSE, UNFINGERPRINTABLE], [nacl], workers=1)
    # CDVAE: the invalid structure is counted (and not covered); the failed one too
    assert (summary["n_gen"], summary["cov_precision"], summary["cov_recall"]) == (3, 1 / 3, 1.0)
    assert summary["n_fingerprint_errors"] == 1
    error = summary["fingerprint_errors"][0]
    assert error["name"] == "gen:2" and error["reason"].startswith("fingerprint failed")
    valid_only = coverage([nacl, TOO_CLOSE], [nacl], valid_only=True, workers=1)
    assert (valid_only["n_gen"], valid_only["cov_precision"]) == (1, 1.0)
    with pytest.raises(CrystalMetricsError, match="no structure of GEN could be fingerprinted"):
        coverage([UNFINGERPRINTABLE], [nacl], workers=1)


def test_two_workers_give_the_same_fingerprints(matminer, examples):
    crystals = examples.crystals[:8]
    serial, forked = fingerprints(crystals, workers=1), fingerprints(crystals, workers=2)
    np.testing.assert_array_equal(forked.structure, serial.structure)
    np.testing.assert_array_equal(forked.composition, serial.composition)


@pytest.mark.filterwarnings("ignore:.*(oxidation states|radius)")  # CrystalNN, called directly
def test_agrees_with_direct_matminer_calls(matminer, examples):
    """Fingerprints with matminer's SiteStatsFingerprint (mean over sites) and ElementProperty,
    CDVAE's scaler from its constants, distances by broadcasting, COV by CDVAE's formula."""
    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint
    from matminer.featurizers.structure.sites import SiteStatsFingerprint

    gen = examples.crystals[:4]
    ref = read_structures(VAL_CSV).crystals[:5]
    site_stats = SiteStatsFingerprint(CrystalNNFingerprint.from_preset("ops"), stats=("mean",))
    magpie = ElementProperty.from_preset("magpie", impute_nan=False)
    scaler = json.loads((ROOT / "crystal_metrics/features/data/cdvae_comp_scaler.json").read_text())

    def direct(crystals):
        structures = [c.to_pymatgen() for c in crystals]
        struct = np.array([site_stats.featurize(s) for s in structures])
        comp = np.array([magpie.featurize(s.composition) for s in structures], dtype=float)
        comp = (comp - np.array(scaler["means"])) / np.array(scaler["stds"])
        return struct, np.where(np.isnan(comp), 0.0, comp)

    (gen_s, gen_c), (ref_s, ref_c) = direct(gen), direct(ref)
    struct_dist = np.linalg.norm(gen_s[:, None] - ref_s[None], axis=-1)
    comp_dist = np.linalg.norm(gen_c[:, None] - ref_c[None], axis=-1)
    np.testing.assert_allclose(structure_fingerprint(gen[0]), gen_s[0], atol=1e-12)
    cutoffs = [(0.4, 10.0), (0.2, 4.0), (np.median(struct_dist), np.median(comp_dist))]
    values = []
    for struct_cutoff, comp_cutoff in cutoffs:
        recall = np.mean((struct_dist.min(0) <= struct_cutoff) & (comp_dist.min(0) <= comp_cutoff))
        precision = np.mean((struct_dist.min(1) <= struct_cutoff)
                            & (comp_dist.min(1) <= comp_cutoff))
        ours = coverage(gen, ref, struct_cutoff=struct_cutoff, comp_cutoff=comp_cutoff, workers=1)
        assert (ours["cov_recall"], ours["cov_precision"]) == (recall, precision)
        values += [recall, precision]
    assert any(0 < v < 1 for v in values)  # not a trivial agreement on all-or-nothing


def test_cli_json_and_dataset_presets(matminer, tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    for cif in sorted(MP20_DIR.glob("*.cif"))[:3]:
        (folder / cif.name).write_text(cif.read_text())
    result = run("coverage", folder, folder, "--dataset", "perov5", "--comp-cutoff", 3,
                 "--workers", 1, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert re.search(r"COV-R +1\.0000  \(3/3\)", result.output)
    data = json.loads((tmp_path / "c.json").read_text())
    assert set(data) == COVERAGE_KEYS
    assert (data["dataset"], data["struct_cutoff"], data["comp_cutoff"]) == ("perov5", 0.2, 3.0)
    assert (data["cov_recall"], data["cov_precision"], data["n_gen"]) == (1.0, 1.0, 3)
    assert run("coverage", folder, folder, "--dataset", "mp-20").exit_code == 2
