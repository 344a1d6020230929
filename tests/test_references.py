"""The shipped reference sets: their files (within the size budget, in the wheel, each statistics
file made from its CSV by the default extractor), names wherever a path is accepted, the
`references` command."""
import hashlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from crystal_metrics import read_structures
from crystal_metrics.alignn.checkpoint import ALIGNN_FF_MEMBERS, ALIGNN_FF_NAME
from crystal_metrics.cli import main
from crystal_metrics.features import FeatureSet
from crystal_metrics.metrics.distribution import densities
from crystal_metrics.references import REFERENCES, SIZE_BUDGET, named, resolve
from crystal_metrics.scoring import FeatureSource
from support import MP20_DIR, ROOT, VAL_CSV

PACKAGE = ROOT / "crystal_metrics"
WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
KID_LATENTS = 1500


def test_the_package_data_fits_the_budget_and_every_file_is_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    shipped = set()
    for package, globs in patterns.items():
        if package.split(".")[0] == "crystal_metrics":
            folder = PACKAGE.joinpath(*package.split(".")[1:])
            shipped |= {path for glob in globs for path in folder.glob(glob)}
    for reference in REFERENCES.values():
        assert {reference.structures, reference.statistics} <= shipped, reference.name
    assert (PACKAGE / "references" / "data" / "README.md") in shipped  # licences, citations
    assert sum(path.stat().st_size for path in shipped) <= SIZE_BUDGET == 15 * 10 ** 6


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_each_statistics_file_is_of_its_csv_and_the_default_extractor(name, tmp_path):
    reference = REFERENCES[name]
    rows = pd.read_csv(reference.structures)
    stats = FeatureSet.load(reference.statistics)
    assert len(rows) == stats.n == reference.n
    assert stats.extractor.name == ALIGNN_FF_NAME and stats.extractor.variant == ""
    assert stats.extractor.sha256 == ALIGNN_FF_MEMBERS["best_model.pt"]
    assert stats.kid_limit == KID_LATENTS == len(stats.features) == len(set(stats.keys))
    rows.head(5).to_csv(tmp_path / "head.csv", index=False)
    first = read_structures(tmp_path / "head.csv").crystals
    np.testing.assert_allclose(stats.densities[:5], densities(first), rtol=1e-12)


def test_a_name_reads_its_structures_and_gives_its_statistics():
    structures = read_structures("carbon24-test")
    assert len(structures) == 2030 and not structures.errors
    assert structures.source == "carbon24-test"
    stats = FeatureSource(progress=False)("perov5-test")  # no extractor loaded
    assert stats.n == 3785 and stats.kid_limit == KID_LATENTS


def test_another_extractor_embeds_the_named_structures(monkeypatch):
    from crystal_metrics import scoring

    asked = []

    def read(source, **kwargs):
        asked.append(str(source))
        return read_structures(VAL_CSV)

    monkeypatch.setattr(scoring, "read_structures", read)
    stats = FeatureSource(WEIGHTS, device="cpu", cache=False, progress=False)("mp20-val")
    assert asked == ["mp20-val"] and stats.n == len(read_structures(VAL_CSV))


def test_a_statistics_file_of_another_extractor_is_refused():
    stats = REFERENCES["mp20-test"].statistics
    result = CliRunner().invoke(main, ["fad", str(MP20_DIR), str(stats), "--weights",
                                       str(WEIGHTS), "--device", "cpu", "--no-cache"])
    assert result.exit_code == 1 and "different extractors" in result.output


def test_an_existing_path_wins_over_a_name(tmp_path, monkeypatch):
    assert named("mp20-test") is REFERENCES["mp20-test"]
    assert resolve("mp20-val", "statistics") == REFERENCES["mp20-val"].statistics
    assert named("mp20-train") is None and named(3) is None
    assert resolve("gen/", "structures") == "gen/"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mp20-test").mkdir()
    assert named("mp20-test") is None
    with pytest.raises(ValueError, match="'structures' or 'statistics'"):
        resolve("mp20-test", "latents")


def test_the_references_command_lists_sizes_and_hashes():
    result = CliRunner().invoke(main, ["references"])
    assert result.exit_code == 0
    for reference in REFERENCES.values():
        assert f"{reference.name}  {reference.n:,} structures" in result.output
        for path in (reference.structures, reference.statistics):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert f"{path}  {path.stat().st_size / 1e6:.2f} MB  sha256 {digest}" in result.output
    assert "budget 15 MB" in result.output



def test_dataset_defaults_to_the_named_references():
    from crystal_metrics.cli import dataset_of

    assert dataset_of(None, "perov5-test") == "perov5"
    assert dataset_of(None, "carbon24-test") == "carbon24"
    assert dataset_of(None, "ref.csv") == "mp20"
    assert dataset_of("mp20", "perov5-test") == "mp20"  # as given
