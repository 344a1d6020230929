"""Coverage COV-R / COV-P (CDVAE): hand-worked distances, invariances, agreement with matminer,
the fingerprint cache."""
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
from crystal_metrics.features import StructureCache, structure_hash
from crystal_metrics.features import cache as cache_module
from crystal_metrics.features import fingerprints as fingerprint_module
from crystal_metrics.features.cache import default_cache
from crystal_metrics.features.fingerprints import cache_key, fingerprints, structure_fingerprint
from crystal_metrics.metrics import coverage as coverage_module
from crystal_metrics.metrics.coverage import coverage_scores, nearest_distances
from support import MP20_DIR, ROOT, TRANSFORMS, VAL_CSV, rock_salt

COVERAGE_KEYS = {"cov_recall", "cov_precision", "dataset", "struct_cutoff", "comp_cutoff",
                 "valid_only", "oxidation_states", "n_gen", "n_ref", "n_read_errors", "read_errors",
                 "n_fingerprint_errors", "fingerprint_errors"}
#: Og has no Magpie or CrystalNN radius data: its fingerprint fails.
UNFINGERPRINTABLE = Crystal.checked(np.eye(3) * 3, [[0, 0, 0], [.5, .5, .5]], [118, 1])
#: Two atoms 0.1 Å apart: structurally invalid, fingerprint fine.
TOO_CLOSE = Crystal.checked(np.eye(3) * 4, [[0, 0, 0], [0.025, 0, 0]], [11, 17])
#: He lacks some Magpie data: 12 NaN in its raw composition fingerprint (0 once normalised).
HELIUM_CHLORIDE = Crystal.checked(np.eye(3) * 3.5, [[0, 0, 0], [.5, .5, .5]], [2, 17])


pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def count_fingerprinted(monkeypatch) -> list:
    """The crystals fingerprinted from now on (in this process: use workers=1)."""
    calls, real = [], fingerprint_module._fingerprint_one

    def counted(crystal):
        calls.append(crystal)
        return real(crystal)

    monkeypatch.setattr(fingerprint_module, "_fingerprint_one", counted)
    return calls


def assert_same_fingerprints(actual, expected):
    np.testing.assert_array_equal(actual.structure, expected.structure)  # bit for bit
    np.testing.assert_array_equal(actual.composition, expected.composition)
    np.testing.assert_array_equal(actual.indices, expected.indices)
    assert actual.failures == expected.failures


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


def test_second_run_reads_every_fingerprint_from_the_cache(matminer, examples, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path))
    gen = [*examples.crystals[:4], HELIUM_CHLORIDE]
    ref = read_structures(VAL_CSV).crystals[:5]
    uncached = fingerprints(gen, workers=1)
    first = coverage(gen, ref, struct_cutoff=0.6, comp_cutoff=8.0, workers=1)
    assert default_cache().counts() == {cache_key(): 10}
    calls = count_fingerprinted(monkeypatch)
    second = coverage(gen, ref, struct_cutoff=0.6, comp_cutoff=8.0, workers=1)
    cached = fingerprints(gen, workers=1, cache=default_cache())
    assert calls == [] and second == first
    assert 0 < first["cov_recall"] < 1  # not a trivial all-or-nothing value
    assert_same_fingerprints(cached, uncached)
    vector, _ = default_cache().get(cache_key(), [structure_hash(HELIUM_CHLORIDE)]).popitem()[1]
    assert vector.shape == (61 + 132,) and np.isnan(vector[61:]).sum() == 12  # raw, NaN kept


def test_failed_fingerprints_are_not_cached(matminer, nacl, tmp_path, monkeypatch):
    cache = StructureCache(tmp_path / "e.sqlite")
    first = fingerprints([nacl, UNFINGERPRINTABLE], workers=1, cache=cache)
    assert list(first.failures) == [1] and cache.counts() == {cache_key(): 1}
    calls = count_fingerprinted(monkeypatch)
    second = fingerprints([UNFINGERPRINTABLE, nacl], workers=1, cache=cache)  # computed again
    assert len(calls) == 1 and calls[0] is UNFINGERPRINTABLE
    assert second.failures == {0: first.failures[1]} and list(second.indices) == [1]
    np.testing.assert_array_equal(second.structure, first.structure)
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path))
    summaries = [coverage([nacl, UNFINGERPRINTABLE], [nacl], workers=1) for _ in range(2)]
    assert summaries[1] == summaries[0] and summaries[1]["n_fingerprint_errors"] == 1


def test_interrupted_fingerprints_keep_finished_chunks(matminer, examples, tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "CACHE_CHUNK", 3)
    cache = StructureCache(tmp_path / "e.sqlite")
    crystals = examples.crystals[:8]
    uncached = fingerprints(crystals, workers=1)
    real, calls = fingerprint_module._fingerprint_one, []

    class Interrupted(Exception):
        pass

    def fingerprint_then_die(crystal):
        calls.append(crystal)
        if len(calls) == 5:  # the run dies during its second chunk
            raise Interrupted
        return real(crystal)

    monkeypatch.setattr(fingerprint_module, "_fingerprint_one", fingerprint_then_die)
    with pytest.raises(Interrupted):
        fingerprints(crystals, workers=1, cache=cache)
    assert cache.counts() == {cache_key(): 3}
    monkeypatch.setattr(fingerprint_module, "_fingerprint_one", real)
    calls = count_fingerprinted(monkeypatch)
    resumed = fingerprints(crystals, workers=1, cache=cache)
    assert list(map(id, calls)) == list(map(id, crystals[3:]))  # only the 5 missing ones
    assert_same_fingerprints(resumed, uncached)


def test_chunked_forked_run_equals_one_serial_pass(matminer, examples, tmp_path, monkeypatch):
    crystals = [*examples.crystals[:10], UNFINGERPRINTABLE, *examples.crystals[10:15]]
    serial = fingerprints(crystals, workers=1)
    monkeypatch.setattr(cache_module, "CACHE_CHUNK", 8)  # 2 chunks, each on 2 workers
    cache = StructureCache(tmp_path / "e.sqlite")
    assert_same_fingerprints(fingerprints(crystals, workers=2, cache=cache), serial)
    assert cache.counts() == {cache_key(): 15}


def test_cache_key_changes_with_the_matminer_version(matminer, nacl, tmp_path, monkeypatch):
    cache = StructureCache(tmp_path / "e.sqlite")
    fingerprints([nacl], workers=1, cache=cache)
    old_key = cache_key()
    assert f"matminer-{matminer.__version__}" in old_key
    monkeypatch.setattr(matminer, "__version__", "0.0.1")
    calls = count_fingerprinted(monkeypatch)
    fingerprints([nacl], workers=1, cache=cache)
    assert len(calls) == 1  # the old version's fingerprint is not used
    assert cache.counts() == {old_key: 1, old_key.replace(old_key.split(":")[2], "matminer-0.0.1"): 1}


def test_cli_no_cache_computes_everything_and_writes_nothing(matminer, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "cache"))
    folders = {"a": tmp_path / "a", "b": tmp_path / "b"}
    cifs = sorted(MP20_DIR.glob("*.cif"))
    for (name, folder), chosen in zip(folders.items(), (cifs[:3], cifs[3:6])):
        folder.mkdir()
        for cif in chosen:
            (folder / cif.name).write_text(cif.read_text())
    calls = count_fingerprinted(monkeypatch)
    no_cache = run("coverage", folders["a"], folders["a"], "--workers", 1, "--no-cache")
    assert no_cache.exit_code == 0, no_cache.output
    assert len(calls) == 6 and not (tmp_path / "cache" / "embeddings.sqlite").exists()
    cached = run("coverage", folders["a"], folders["a"], "--workers", 1)
    assert cached.output == no_cache.output
    assert len(calls) == 9  # REF, the same structures as GEN, came from the cache
    assert run("coverage", folders["b"], folders["a"], "--workers", 1, "--no-cache").exit_code == 0
    assert len(calls) == 15 and default_cache().counts() == {cache_key(): 3}
    assert f"fingerprints {cache_key().split(':', 1)[1]}: 3 structures" in run("weights").output
