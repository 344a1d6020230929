"""`evaluate --protocol`: what each protocol sets, that evaluate's numbers equal the separate
commands' under the same settings, and the error paths."""
import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import (
    PROTOCOLS,
    Crystal,
    CrystalMetricsError,
    Protocol,
    Selection,
    coverage,
    density_emd,
    diversity,
    n_elements_emd,
    read_structures,
    symmetry,
)
from crystal_metrics.cli import main
from crystal_metrics.metrics.selection import TooFewStructuresError
from crystal_metrics.protocols import get_protocol
from crystal_metrics.scoring import FeatureSource, energy_emd, evaluate
from support import MP20_DIR, ROOT, VAL_CSV

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
pytestmark = pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")


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


#: C N Si P S Cl Br I on the diagonal of a 12 Å cube (2.6 Å apart): 11,010,048 combinations of
#: SMACT 2.2.1 oxidation states, charge balanced for CDVAE, invalid for DiffCSP (over 1e7).
EIGHT_NON_METALS = Crystal.checked(
    np.eye(3) * 12, np.linspace(0, 1, 8, endpoint=False)[:, None] * [1, 1, 1],
    [6, 7, 14, 15, 16, 17, 35, 53])


def test_cdvae_protocol_equals_the_separate_metrics_with_the_same_settings(source):
    gen = read_structures(MP20_DIR).crystals[16:26]  # the 6th (mp-21383) is SMACT-invalid
    ref = read_structures(VAL_CSV).crystals[:10]
    cdvae = dataclasses.replace(PROTOCOLS["cdvae"], n_samples=6)
    summary = evaluate(gen, ref, source, cdvae, seed=5, workers=1).summary
    chosen = Selection(valid_only=True, n_samples=6, seed=5)
    assert summary["protocol"] == {"name": "cdvae", "oxidation_states": "smact221",
                                   "max_oxidation_combinations": None, "valid_only": True,
                                   "n_samples": 6, "coverage": True, "diversity": True,
                                   "energy_model": "alignn"}
    assert (summary["valid_only"], summary["n_samples"], summary["seed"]) == (True, 6, 5)
    assert summary["scored"] == "6 drawn at random (seed 5) from the 9 valid of 10 readable"
    assert summary["density_emd"] == pytest.approx(density_emd(gen, ref, chosen))
    assert summary["n_elements_emd"] == pytest.approx(n_elements_emd(gen, ref, chosen))
    assert summary["energy_emd"] == pytest.approx(energy_emd(gen, ref, source, chosen))
    separate = diversity(gen, chosen, workers=1)
    assert (summary["comp_div"], summary["struct_div"]) == (separate["comp_div"],
                                                            separate["struct_div"])
    covered = coverage(gen, ref, workers=1)  # every readable GEN structure, as CDVAE
    assert (summary["cov_recall"], summary["cov_precision"]) == (covered["cov_recall"],
                                                                 covered["cov_precision"])
    groups = symmetry(gen, ref, chosen, workers=1)
    assert summary["space_groups"]["gen"] == groups["gen"]
    assert summary["space_groups"]["crystal_system_tv"] == groups["crystal_system_tv"]
    assert (summary["n_gen"], summary["n_structures"]) == (10, 10)  # FAD: every structure


def test_gemsdiff_protocol_scores_every_structure(source):
    gen, ref = read_structures(MP20_DIR).crystals[16:26], read_structures(VAL_CSV).crystals[:10]
    summary = evaluate(gen, ref, source, "gemsdiff", workers=1).summary
    assert summary["scored"] == "all 10 readable" and summary["n_scored"] == 10
    assert summary["density_emd"] == pytest.approx(density_emd(gen, ref))
    assert "cov_recall" not in summary and "comp_div" not in summary


def test_diffcsp_limits_the_oxidation_state_combinations(source):
    gen = [*read_structures(MP20_DIR).crystals[:3], EIGHT_NON_METALS]
    fractions = {}
    for name in ("cdvae", "diffcsp"):
        protocol = dataclasses.replace(PROTOCOLS[name], n_samples=None, coverage=False,
                                       diversity=False)
        fractions[name] = evaluate(gen, VAL_CSV, source, protocol,
                                   workers=1).summary["validity"]["compositional"]
    assert fractions == {"cdvae": 1.0, "diffcsp": 0.75}


def test_the_cdvae_protocol_needs_1000_valid_structures(source):
    with pytest.raises(TooFewStructuresError, match="GEN has 39 valid structures, fewer than "
                                                    "the 1000 asked for"):
        evaluate(MP20_DIR, VAL_CSV, source, "cdvae", workers=1)
    result = run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--protocol", "cdvae")
    assert result.exit_code == 2 and "fewer than the 1000 asked for" in result.output


def test_cli_protocol_and_what_it_fixes(tmp_path):
    out = tmp_path / "e.json"
    result = run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--protocol", "gemsdiff",
                 "--workers", 1, "--seed", 3, "--json", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["protocol"]["name"] == "gemsdiff"
    assert "protocol               gemsdiff" in result.output
    for option in (["--valid-only"], ["--n-samples", 5], ["--oxidation-states", "smact14"]):
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
    with pytest.raises(CrystalMetricsError, match="unknown energy model 'cdvae'"):
        Protocol(energy_model="cdvae")
    assert get_protocol(None) == Protocol()
    with pytest.raises(CrystalMetricsError, match="unknown dataset 'mp-20'"):
        evaluate(MP20_DIR, VAL_CSV, None, dataset="mp-20")
