"""FAD / KID / energy EMD / evaluate plumbing, with the small random-weight classic checkpoint."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import CrystalMetricsError, read_structures
from crystal_metrics.cli import PER_STRUCTURE_COLUMNS, main
from crystal_metrics.features import ExtractorId, FeatureStatistics
from crystal_metrics.metrics.distribution import emd
from crystal_metrics.scoring import FeatureSource, SmallSampleWarning, energy_emd, evaluate, fad
from support import BROKEN_DIR, MP20_DIR, ROOT, TRANSFORMS, VAL_CSV

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
FAD_KEYS = {"fad", "n_gen", "n_ref", "extractor", "kid", "kid_std"}
EVALUATE_KEYS = FAD_KEYS | {"n_structures", "n_read_errors", "read_errors", "n_valid", "validity",
                            "density_emd", "n_elements_emd", "energy_emd", "oxidation_states",
                            "protocol", "valid_only", "n_samples", "seed", "n_scored", "scored",
                            "space_groups"}


@pytest.fixture(autouse=True, scope="module")
def _cache_in_tmp(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def source():
    return FeatureSource(WEIGHTS, device="cpu", progress=False)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_fad_of_a_set_with_itself_is_zero(source):
    with pytest.warns(SmallSampleWarning, match="has 40 structures, fewer than 2 × 32"):
        result = fad(MP20_DIR, MP20_DIR, source)
    assert set(result) == FAD_KEYS
    assert result["fad"] == pytest.approx(0.0, abs=1e-9)
    assert result["extractor"]["name"] == "classic_random" and result["extractor"]["dim"] == 32
    assert len(result["extractor"]["sha256"]) == 12


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
@pytest.mark.parametrize("name", ["rotation", "permutation", "supercell"])
def test_fad_invariant_under_symmetry_transforms(source, name):
    # 40 samples in 32 dimensions: the covariance is near-singular and its square root turns
    # float32 round-off into ~1e-5; a broken invariance moves FAD by the val-vs-test scale.
    structures = read_structures(MP20_DIR)
    moved = [TRANSFORMS[name](c) for c in structures.crystals]
    scale = fad(structures, VAL_CSV, source)["fad"]
    assert fad(moved, structures, source)["fad"] < 1e-3 * scale


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
def test_statistics_file_gives_the_same_scores_and_the_cache_is_used(source, tmp_path, monkeypatch):
    direct = fad(MP20_DIR, VAL_CSV, source)
    assert run("stats", VAL_CSV, "-o", tmp_path / "ref.npz", "--weights", WEIGHTS).exit_code == 0
    monkeypatch.setattr(type(source.extractor), "embed", lambda *a, **k: pytest.fail("not cached"))
    via_file = fad(MP20_DIR, tmp_path / "ref.npz", source)
    for key in ("fad", "kid"):
        assert via_file[key] == pytest.approx(direct[key], rel=1e-6)
    gen, ref = source(MP20_DIR), source(tmp_path / "ref.npz")
    assert energy_emd(gen, ref) == pytest.approx(emd(gen.energies, ref.energies))


def test_mixing_extractors_is_refused(source, tmp_path):
    stats = source(VAL_CSV)
    other = ExtractorId("other-model", "0" * 64, stats.extractor.dim)
    FeatureStatistics(stats.features, stats.energies, stats.densities, stats.n_elements,
                      other).save(tmp_path / "other.npz")
    with pytest.raises(CrystalMetricsError, match="different extractors"):
        fad(MP20_DIR, tmp_path / "other.npz", source)
    result = run("fad", MP20_DIR, tmp_path / "other.npz", "--weights", WEIGHTS)
    assert result.exit_code == 1 and "different extractors" in result.output


def test_evaluate_json_and_per_structure(tmp_path):
    result = run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--json", tmp_path / "e.json",
                 "--per-structure", tmp_path / "e.csv")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == EVALUATE_KEYS
    assert data["n_structures"] == data["n_gen"] == 40 and data["n_valid"] == 39
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert lines[0].split(",") == list(PER_STRUCTURE_COLUMNS) and len(lines) == 41
    energies = [float(line.split(",")[-3]) for line in lines[1:]]
    assert np.isfinite(energies).all()
    assert {line.split(",")[-2] for line in lines[1:]} == {"True"}  # every structure scored
    assert run("density", MP20_DIR, VAL_CSV, "--json", tmp_path / "d.json").exit_code == 0
    density = json.loads((tmp_path / "d.json").read_text())
    assert data["density_emd"] == pytest.approx(density["density_emd"])
    assert "warning: GEN has 40 structures" in result.output


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
def test_evaluate_reports_read_errors_of_gen(source):
    summary = evaluate(list(read_structures(MP20_DIR).crystals[:5]) + ["junk"], VAL_CSV,
                       source).summary
    assert summary["n_structures"] == 5
    assert summary["read_errors"] == [{"name": "gen:5", "reason": "not a structure: str"}]


def test_too_few_structures_is_a_clear_error(source):
    with pytest.raises(CrystalMetricsError, match="GEN has 1 readable structure"):
        fad(BROKEN_DIR, VAL_CSV, source)


@pytest.mark.parametrize("args, message", [
    (["fad", MP20_DIR, VAL_CSV, "--weights", "no/such/checkpoint"], "no/such/checkpoint"),
    (["fad", "missing_dir", VAL_CSV, "--weights", WEIGHTS], "no readable structures in missing_dir"),
])
def test_fad_errors_are_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output


def test_interrupted_embedding_keeps_finished_chunks(tmp_path, monkeypatch):
    from crystal_metrics.features import EmbeddingCache, embedding

    monkeypatch.setattr(embedding, "CACHE_CHUNK", 16)
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    structures = read_structures(VAL_CSV)
    real_embed, calls = type(source.extractor).embed, []

    class Interrupted(Exception):
        pass

    def embed_then_die(self, chunk, **kwargs):
        calls.append(len(chunk))
        if calls == [16, 16]:  # the run dies during its second chunk
            raise Interrupted
        return real_embed(self, chunk, **kwargs)

    monkeypatch.setattr(type(source.extractor), "embed", embed_then_die)
    with pytest.raises(Interrupted):
        embedding.featurize(structures, source.extractor, cache)
    assert sum(cache.counts().values()) == 16
    calls.clear()
    stats = embedding.featurize(structures, source.extractor, cache)
    assert calls == [16, 8] and stats.n == 40  # only the 24 missing structures are embedded


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
def test_energies_without_reference_are_left_out_of_the_energy_emd_with_a_warning():
    from crystal_metrics.scoring import MissingEnergyWarning, energy_emd_of

    def stats(energies, seed):
        n = len(energies)
        features = np.random.default_rng(seed).normal(size=(n, 2))
        return FeatureStatistics(features, np.array(energies, float), np.ones(n), np.ones(n),
                                 ExtractorId("test", "0" * 64, 2))

    gen = stats([0.0, 1.0, np.nan, 2.0], 0)  # e.g. a structure with Po: no elemental reference
    ref = stats([0.5, 1.5, 2.5, 3.5, np.nan], 1)
    with pytest.warns(MissingEnergyWarning) as caught:
        energy = energy_emd_of(gen, ref)
    assert [str(w.message)[:38] for w in caught] == ["GEN: 1 of 4 structures have no formati",
                                                      "REF: 1 of 5 structures have no formati"]
    # W1 of {0, 1, 2} and {0.5, 1.5, 2.5, 3.5}: the integral of |F - G| is 1 by hand
    assert energy == pytest.approx(1.0)
    with pytest.raises(CrystalMetricsError, match="GEN has no structure with a formation energy"), \
            pytest.warns(MissingEnergyWarning):
        energy_emd_of(stats([np.nan, np.nan, np.nan], 2), ref)
