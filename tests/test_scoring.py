"""FAD / KID / energy EMD / evaluate plumbing, with the small random-weight classic checkpoint."""
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import CrystalMetricsError, read_structures
from crystal_metrics.api import energy_emd, evaluate, fad
from crystal_metrics.cli import main
from crystal_metrics.features import ExtractorId, FeatureSet
from crystal_metrics.metrics.distribution import emd
from crystal_metrics.results import PER_STRUCTURE_COLUMNS
from crystal_metrics.scoring import FeatureSource, SmallSampleWarning
from support import BROKEN_DIR, MP20_DIR, ROOT, TRANSFORMS, VAL_CSV

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
FAD_KEYS = {"fad", "n_gen", "n_ref", "extractor", "kid", "kid_std", "kid_subset_size",
            "n_not_embedded", "not_embedded"}
EVALUATE_KEYS = FAD_KEYS | {"n_structures", "n_read_errors", "read_errors", "n_valid", "validity",
                            "density_emd", "n_elements_emd", "energy_emd", "oxidation_states",
                            "protocol", "valid_only", "n_samples", "seed", "n_scored", "scored",
                            "space_groups"}


pytestmark = pytest.mark.usefixtures("cache_in_tmp")


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
    FeatureSet(stats.features, stats.energies, stats.densities, stats.n_elements,
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
                       source).summary()
    assert summary["n_structures"] == 5
    assert summary["read_errors"] == [{"name": "gen:5", "reason": "not a structure: str"}]


def test_too_few_structures_is_a_clear_error(source):
    with pytest.raises(CrystalMetricsError, match="GEN has 1 usable structure [(]6 unreadable: listed above[)]"):
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
    from crystal_metrics.features import StructureCache, embedding
    from crystal_metrics.features import cache as cache_module

    monkeypatch.setattr(cache_module, "CACHE_CHUNK", 16)
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    cache = StructureCache(tmp_path / "e.sqlite")
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


def test_embedding_crystals_equals_embedding_their_pymatgen_structures_bit_for_bit(source):
    crystals = read_structures(VAL_CSV).crystals[:12]
    direct = source.extractor.embed(crystals, batch_size=5)
    via_pymatgen = source.extractor.embed([c.to_pymatgen() for c in crystals], batch_size=5)
    for ours, theirs in zip(direct, via_pymatgen):
        np.testing.assert_array_equal(ours, theirs)


def test_an_embedding_cache_written_before_the_shared_loop_is_read_as_it_is(tmp_path,
                                                                            monkeypatch):
    from crystal_metrics.features import StructureCache, embedding, structure_hash

    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    extractor, structures = source.extractor, read_structures(VAL_CSV)
    latents, outputs = extractor.embed(structures.crystals)
    cache = StructureCache(tmp_path / "e.sqlite")  # as the old loop stored them: latent, output
    cache.put(f"{extractor.sha256}:{extractor.id}", [structure_hash(c) for c in
                                                     structures.crystals], latents, outputs)
    monkeypatch.setattr(type(extractor), "embed", lambda *a, **k: pytest.fail("embedded again"))
    stats = embedding.featurize(structures, extractor, cache)
    np.testing.assert_array_equal(stats.features, latents)
    np.testing.assert_array_equal(stats.energies, outputs)  # a property model: its output


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
def test_energies_without_reference_are_left_out_of_the_energy_emd_with_a_warning():
    from crystal_metrics.scoring import MissingEnergyWarning, energy_emd_of

    def stats(energies, seed):
        n = len(energies)
        features = np.random.default_rng(seed).normal(size=(n, 2))
        return FeatureSet(features, np.array(energies, float), np.ones(n), np.ones(n),
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


def test_fad_never_looks_at_formation_energies():
    """FAD and KID only: sets without a single formation energy (elements without an elemental
    reference) neither warn nor fail, as the energy EMD would."""
    from crystal_metrics.scoring import MissingEnergyWarning

    rng = np.random.default_rng(5)

    def stats(n):
        return FeatureSet(rng.normal(size=(n, 2)), np.full(n, np.nan), np.ones(n), np.ones(n),
                          ExtractorId("test", "0" * 64, 2))

    gen, ref = stats(30), stats(40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fad(gen, ref)
    assert not [w for w in caught if w.category is MissingEnergyWarning]
    assert result["n_gen"] == 30 and result["fad"] > 0 and "energy_emd" not in result


@pytest.fixture(scope="module")
def with_a_large_cell(tmp_path_factory):
    """The 40 example CIFs and one 10,648-atom cell (big.cif)."""
    import shutil

    from support import simple_cubic_grid, write_p1_cif

    folder = tmp_path_factory.mktemp("mixed") / "gen"
    shutil.copytree(MP20_DIR, folder)
    write_p1_cif(folder / "big.cif", simple_cubic_grid())
    return folder


def test_evaluate_with_a_10648_atom_cell_scores_every_other_structure(tmp_path, with_a_large_cell):
    result = run("evaluate", with_a_large_cell, VAL_CSV, "--weights", WEIGHTS, "--json",
                 tmp_path / "e.json", "--per-structure", tmp_path / "e.csv")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert ("not embedded gen:big: 10,648 atoms, more than --max-atoms 1,000: left out (ALIGNN "
            "needs about 1 GB of memory per 1,000 atoms; raise --max-atoms to include it)"
            ) in result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == EVALUATE_KEYS
    assert (data["n_structures"], data["n_gen"], data["n_not_embedded"]) == (41, 40, 1)
    assert data["not_embedded"][0]["name"] == "gen:big" and data["n_read_errors"] == 0
    assert run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--json",
               tmp_path / "alone.json").exit_code == 0
    alone = json.loads((tmp_path / "alone.json").read_text())
    for key in ("fad", "kid", "energy_emd", "density_emd"):
        assert data[key] == pytest.approx(alone[key], rel=1e-9)
    assert data["n_valid"] == alone["n_valid"] + 1  # the grid is valid: 2 Å apart, carbon
    rows = {line.split(",")[0]: line.split(",") for line in (tmp_path / "e.csv").read_text()
            .splitlines()[1:]}
    assert rows["big"][2:4] == ["10648", "85184"] and rows["big"][5] == "2"
    assert rows["big"][-3:-1] == ["nan", "False"]  # no energy, not scored
    assert all(np.isfinite(float(row[-3])) and row[-2] == "True"
               for name, row in rows.items() if name != "big")
    assert data["n_scored"] == 40 and data["space_groups"]["gen"]["n"] == 40


def test_structures_above_max_atoms_are_left_out_and_named(source):
    limited = FeatureSource(WEIGHTS, device="cpu", progress=False, max_atoms=8)
    structures = read_structures(MP20_DIR)
    small = [n for n, c in zip(structures.names, structures.crystals) if c.n_atoms <= 8]
    with pytest.warns(SmallSampleWarning):
        result = fad(structures, VAL_CSV, limited)
    assert result["n_gen"] == len(small) and 2 <= len(small) < 40
    assert {e["name"] for e in result["not_embedded"] if e["name"].startswith("gen:")} == {
        f"gen:{n}" for n in structures.names if n not in small}
    n_ref_large = sum(c.n_atoms > 8 for c in read_structures(VAL_CSV).crystals)
    assert result["n_not_embedded"] == 40 - len(small) + n_ref_large
    assert result["n_ref"] == 40 - n_ref_large


def test_nothing_small_enough_is_one_sentence_after_the_list():
    result = run("fad", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--max-atoms", "1")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "not embedded gen:" in result.output and "more than --max-atoms 1:" in result.output
    assert result.output.rstrip().endswith(
        "Error: GEN has 1 usable structure (39 too large: listed above); FAD and KID need at "
        "least 2 (thousands for a meaningful value)")


@pytest.mark.parametrize("command", ["evaluate", "fad"])
def test_too_few_readable_structures_still_shows_the_read_errors(tmp_path, command):
    out = tmp_path / "e.json"
    result = run(command, BROKEN_DIR, VAL_CSV, "--weights", WEIGHTS, "--json", out)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "unreadable gen:corrupt: corrupt CIF" in result.output
    assert "unreadable gen:partial_occupancy: disordered site" in result.output
    assert result.output.rstrip().endswith("Error: GEN has 1 usable structure (6 unreadable: "
                                           "listed above); FAD and KID need at least 2 "
                                           "(thousands for a meaningful value)")
    assert not out.exists()


def test_stats_of_a_one_row_csv_says_why(tmp_path):
    import pandas as pd

    one = tmp_path / "one.csv"
    pd.read_csv(VAL_CSV).head(1).to_csv(one, index=False)
    result = run("stats", one, "-o", tmp_path / "one.npz", "--weights", WEIGHTS)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.endswith(f"Error: {one} has 1 usable structure: a statistics file needs "
                                  "at least 2 for a covariance (thousands for a meaningful FAD)\n")
    assert not (tmp_path / "one.npz").exists()
    stats = FeatureSource(WEIGHTS, device="cpu", progress=False)(one)
    with pytest.raises(CrystalMetricsError, match="needs at least 2 structures"):
        stats.save(tmp_path / "one.npz")


@pytest.mark.parametrize("n, words", [
    (32, ("GEN has 32 structures, fewer than d + 1 = 33: its covariance is rank-deficient and "
          "FAD is biased upward")),
    (33, "GEN has 33 structures, fewer than 2 × 32: FAD is biased upward at this size"),
    (63, "GEN has 63 structures, fewer than 2 × 32: FAD is biased upward at this size"),
    (64, None),
])
def test_small_sample_warning_says_rank_deficient_only_at_d_structures_or_fewer(n, words):
    from crystal_metrics.scoring import feature_scores

    rng = np.random.default_rng(n)
    extractor = ExtractorId("test", "0" * 64, 32)

    def stats(size):
        return FeatureSet(rng.normal(size=(size, 32)), rng.normal(size=size),
                                 np.ones(size), np.ones(size), extractor)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feature_scores(stats(n), stats(64), kid_subsets=2)
    messages = [str(w.message) for w in caught if w.category is SmallSampleWarning]
    assert messages == ([] if words is None else [words + "; use thousands of structures"])


def test_kid_line_shows_the_spread_the_subset_size_and_explains_negative_values(tmp_path):
    from crystal_metrics.results import kid_text

    result = run("fad", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--json", tmp_path / "f.json")
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["kid_subset_size"] == 20 and data["kid_std"] > 0  # 40 vs 40: subsets of 20
    assert f"KID                    {kid_text(data)}" in result.output
    assert kid_text({"kid": 0.012345, "kid_std": 0.0021, "kid_subset_size": 20}) == (
        "0.01235 ± 0.00210 (subsets of 20)")
    assert kid_text({"kid": -0.0004, "kid_std": None, "kid_subset_size": 3}) == (
        "-0.00040 ± n/a (fewer than 4 structures in a set) (subsets of 3); below 0: no difference "
        "detected (the estimate is unbiased, so it scatters around 0 for equal distributions)")


def test_bf16_is_its_own_extractor_close_to_float32(tmp_path):
    fp32 = FeatureSource(WEIGHTS, device="cpu", cache=False, progress=False)
    bf16 = FeatureSource(WEIGHTS, device="cpu", cache=False, progress=False, bf16=True)
    assert bf16.extractor.id == fp32.extractor.id + "-bf16" and not bf16.is_default
    a, b = fp32(VAL_CSV), bf16(VAL_CSV)
    assert b.extractor.variant == "bf16" and b.extractor.label.endswith("[bf16]")
    scale = np.abs(a.features).max(axis=1, keepdims=True)
    error = np.abs(b.features - a.features) / scale
    assert 0 < error.max() < 0.1  # bfloat16 keeps 8 bits of mantissa
    a.save(tmp_path / "fp32.npz")
    result = CliRunner().invoke(main, ["fad", str(MP20_DIR), str(tmp_path / "fp32.npz"),
                                       "--weights", str(WEIGHTS), "--device", "cpu", "--bf16",
                                       "--no-cache"])
    assert result.exit_code == 1 and "different extractors" in result.output
