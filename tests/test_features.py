import numpy as np
import pytest

from crystal_metrics import CrystalMetricsError, OutputExistsError
from crystal_metrics.features import ExtractorId, FeatureSet, StructureCache, structure_hash
from crystal_metrics.features.cache import default_cache
from crystal_metrics.weights import WeightsError
from support import TRANSFORMS, rock_salt

EXTRACTOR = ExtractorId("test-model", "ab" * 32, 4)


def _stats(seed=0, extractor=EXTRACTOR):
    rng = np.random.default_rng(seed)
    return FeatureSet(rng.normal(size=(20, 4)), rng.normal(size=20), rng.uniform(1, 9, 20),
                             rng.integers(1, 5, 20), extractor)


def test_statistics_round_trip(tmp_path):
    stats = _stats()
    stats.save(tmp_path / "s.npz")
    loaded = FeatureSet.load(tmp_path / "s.npz")
    assert loaded.extractor == EXTRACTOR and loaded.n == 20
    for a, b in zip(loaded.gaussian, stats.gaussian):
        np.testing.assert_array_equal(a, b)
    for key in ("features", "energies", "densities", "n_elements"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(stats, key))
    assert EXTRACTOR.as_dict() == {"name": "test-model", "sha256": "ab" * 6, "dim": 4}


def test_statistics_file_is_not_overwritten(tmp_path):
    _stats().save(tmp_path / "s.npz")
    with pytest.raises(OutputExistsError):
        _stats(1).save(tmp_path / "s.npz")


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_not_a_statistics_file(tmp_path, content):
    path = tmp_path / "s.npz"
    if content is None:
        np.savez(path, mu=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(CrystalMetricsError, match="not a crystal-metrics statistics file"):
        FeatureSet.load(path)


def test_different_extractors_are_refused():
    other_weights = ExtractorId("test-model", "cd" * 32, 4)
    other_graph = ExtractorId("test-model", "ab" * 32, 4, "shelltol0")
    for other in (other_weights, other_graph):
        with pytest.raises(CrystalMetricsError, match="different extractors"):
            _stats().check_same_extractor(_stats(extractor=other))
    _stats().check_same_extractor(_stats(1))
    assert str(other_graph) == "test-model[shelltol0] (sha256 abababababab, 4-d)"


def test_extractor_id_of_an_alignn_extractor():
    from types import SimpleNamespace

    sha = "12" * 32
    plain = SimpleNamespace(name="alignn-ff", sha256=sha, dim=256, id=f"alignn-ff-{sha[:12]}-256")
    exact = SimpleNamespace(**{**vars(plain), "id": plain.id + "-shelltol0"})
    assert ExtractorId.of(plain) == ExtractorId("alignn-ff", sha, 256, "")
    assert ExtractorId.of(exact).variant == "shelltol0"


def test_inconsistent_arrays_are_refused():
    with pytest.raises(CrystalMetricsError, match="do not match"):
        FeatureSet(np.zeros((5, 3)), np.zeros(5), np.zeros(5), np.zeros(5), EXTRACTOR)
    with pytest.raises(CrystalMetricsError, match="different lengths"):
        FeatureSet(np.zeros((5, 4)), np.zeros(4), np.zeros(5), np.zeros(5), EXTRACTOR)


def test_cache_round_trip_is_exact(tmp_path):
    cache = StructureCache(tmp_path / "e.sqlite")
    keys = ["a", "b", "c"]
    latents = np.random.default_rng(0).normal(size=(3, 4))
    cache.put("w1", keys, latents, np.array([1.5, np.nan, -2.0]))
    found = cache.get("w1", ["c", "a", "missing"])
    assert set(found) == {"a", "c"}
    np.testing.assert_array_equal(found["a"][0], latents[0])
    assert found["c"][1] == -2.0
    assert np.isnan(cache.get("w1", ["b"])["b"][1])
    assert cache.get("w2", keys) == {}  # other weights: nothing cached


def test_cache_keeps_nan_and_energies_are_optional(tmp_path):
    cache = StructureCache(tmp_path / "e.sqlite")
    vectors = np.array([[1.0, np.nan, -0.0], [np.inf, 2.0, np.nan]])
    cache.put("fingerprints", ["a", "b"], vectors)
    found = cache.get("fingerprints", ["a", "b"])
    np.testing.assert_array_equal(np.array([found["a"][0], found["b"][0]]), vectors)
    assert np.signbit(found["a"][0][2]) and all(np.isnan(found[k][1]) for k in "ab")


def test_structure_hash_distinguishes_structures():
    nacl = rock_salt()
    assert structure_hash(nacl) == structure_hash(rock_salt())
    assert structure_hash(nacl) != structure_hash(rock_salt(5.65))
    assert structure_hash(nacl) != structure_hash(TRANSFORMS["permutation"](nacl))


def test_same_weights_under_another_name_are_the_same_extractor():
    renamed = ExtractorId("a-folder-name", "ab" * 32, 4)  # e.g. the default weights as a folder
    _stats().check_same_extractor(_stats(1, extractor=renamed))


@pytest.mark.parametrize("cut, message", [
    (0.5, "is truncated [(][0-9]+ bytes; the end of the file is missing[)]"),
    (0.0, "is empty [(]0 bytes[)]"),
])
def test_a_truncated_statistics_file_is_named_as_truncated(tmp_path, cut, message):
    path = tmp_path / "s.npz"
    _stats().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CrystalMetricsError, match=f"s.npz {message}"):
        FeatureSet.load(path)


def test_a_statistics_file_with_a_damaged_member_is_named_as_damaged(tmp_path):
    path = tmp_path / "s.npz"
    _stats().save(path)
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("features.npy")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # local header: 30 B
    data[start + info.compress_size // 2] ^= 0xFF  # one flipped byte inside the latents
    path.write_bytes(bytes(data))
    with pytest.raises(CrystalMetricsError, match=r"s.npz is damaged \(member features.npy "):
        FeatureSet.load(path)


def test_a_cache_folder_that_cannot_be_made_is_named_and_is_no_weights_error(tmp_path,
                                                                             monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(CrystalMetricsError) as caught:
        default_cache()
    assert not isinstance(caught.value, WeightsError)
    assert str(caught.value) == (f"Cannot create the cache folder {tmp_path / 'a-file' / 'cache'}: "
                                 "Not a directory.")


def _keyed(seed=0, n=20):
    """A set with structure keys (as `featurize` makes), some of them equal."""
    stats = _stats(seed)
    keys = np.random.default_rng(seed + 100).integers(0, 2 ** 63, n, dtype=np.uint64)
    keys[3] = keys[7]
    from dataclasses import replace
    return replace(stats, keys=keys, moments=None)


def test_moments_of_parts_add_up_to_the_whole_set():
    from crystal_metrics.metrics.frechet import Moments, gaussian_statistics

    features = np.random.default_rng(0).normal(2.0, 3.0, size=(50, 4))
    parts = Moments.of(features[:13]) + Moments.of(features[13:31]) + Moments.of(features[31:])
    for a, b in zip(parts.gaussian(), gaussian_statistics(features)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    again = Moments.from_gaussian(50, *gaussian_statistics(features))
    np.testing.assert_allclose(again.outer, Moments.of(features).outer, rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        Moments.of(features[:1]).gaussian()


def test_merging_parts_gives_the_set_of_the_whole():
    whole = _keyed()
    parts = [whole.take(range(8)), whole.take(range(8, 9)), whole.take(range(9, 20))]
    merged = FeatureSet.merge(parts)
    assert merged.n == 20 and merged.kid_limit is None
    for key in ("features", "energies", "densities", "n_elements", "keys"):
        np.testing.assert_array_equal(getattr(merged, key), getattr(whole, key))
    for a, b in zip(merged.gaussian, whole.gaussian):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(CrystalMetricsError, match="different extractors"):
        FeatureSet.merge([whole, _stats(extractor=ExtractorId("x", "cd" * 32, 4))])
    with pytest.raises(CrystalMetricsError, match="nothing to merge"):
        FeatureSet.merge([])


def test_a_kid_subset_is_chosen_by_key_whatever_the_order_and_split(tmp_path):
    whole = _keyed()
    limited = whole.limited(6)
    chosen = np.sort(np.argsort(whole.keys, kind="stable")[:6])
    np.testing.assert_array_equal(limited.features, whole.features[chosen])
    assert limited.n == 20 and len(limited.features) == 6 and limited.kid_limit == 6
    np.testing.assert_array_equal(limited.gaussian[1], whole.gaussian[1])  # FAD: all 20
    # files of parts, each keeping its own 6, merge into the file of the whole
    for i, rows in enumerate((range(11), range(11, 20))):
        whole.take(rows).limited(6).save(tmp_path / f"{i}.npz")
    merged = FeatureSet.merge([FeatureSet.load(tmp_path / f"{i}.npz") for i in range(2)])
    np.testing.assert_array_equal(merged.features, limited.features)
    np.testing.assert_array_equal(merged.keys, limited.keys)
    limited.save(tmp_path / "limited.npz")
    loaded = FeatureSet.load(tmp_path / "limited.npz")
    assert loaded.kid_limit == 6 and loaded.n == 20
    np.testing.assert_array_equal(loaded.densities, whole.densities)
    with pytest.raises(CrystalMetricsError, match="KID subset"):
        loaded.take([0, 1])
    with pytest.raises(CrystalMetricsError, match="keeping 6 latents cannot give one keeping 8"):
        FeatureSet.merge([loaded], 8)


def test_a_statistics_file_of_format_1_is_read(tmp_path):
    stats = _stats()
    mu, sigma = stats.gaussian
    np.savez(tmp_path / "old.npz", format="crystal-metrics-stats-1", mu=mu, sigma=sigma, n=20,
             extractor_name=EXTRACTOR.name, extractor_sha256=EXTRACTOR.sha256,
             dim=EXTRACTOR.dim, extractor_variant="", features=stats.features,
             energies=stats.energies, densities=stats.densities, n_elements=stats.n_elements)
    old = FeatureSet.load(tmp_path / "old.npz")
    assert old.keys is None and old.kid_limit is None and old.n == 20
    np.testing.assert_array_equal(old.features, stats.features)
    with pytest.raises(CrystalMetricsError, match="no structure keys"):
        old.limited(5)
