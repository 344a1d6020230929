"""CHGNet energies (the [mlip] extra): agreement with CHGNet itself, invariances, relaxation."""
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import Crystal, CrystalMetricsError, MissingExtraError
from crystal_metrics.api import chgnet_energy_emd
from crystal_metrics.cli import main
from crystal_metrics.mlip import Chgnet, relaxation_rmsd
from support import MP20_DIR, TRANSFORMS, rotate, supercell

ENERGY_KEYS = {"energy_emd", "n_gen", "n_ref", "energy_model", "relax_steps", "n_errors", "errors"}
#: `energy --json` also names the scored GEN structures
SELECTION_KEYS = {"valid_only", "n_samples", "seed", "n_scored", "scored"}
#: Na and Cl 26 Å apart: no neighbour within CHGNet's 6 Å cutoff.
ISOLATED = Crystal.checked(np.eye(3) * 30, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17])


@pytest.fixture(scope="session")
def chgnet():
    pytest.importorskip("chgnet")
    return Chgnet(device="cpu", progress=False)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def perturbed(crystal: Crystal, sigma: float = 0.1, seed: int = 0) -> Crystal:
    """`crystal` with Gaussian noise of `sigma` Å on every Cartesian coordinate."""
    noise = np.random.default_rng(seed).normal(0, sigma, crystal.frac_coords.shape)
    frac = crystal.frac_coords + noise @ np.linalg.inv(crystal.lattice)
    return Crystal.checked(crystal.lattice, frac, crystal.numbers)


@pytest.mark.filterwarnings("ignore:Converting a tensor")  # CHGNet, called directly
def test_nacl_energy_matches_a_direct_chgnet_call(chgnet, nacl):
    from chgnet.model import CHGNet

    direct = CHGNet.load(use_device="cpu", verbose=False).predict_structure(nacl.to_pymatgen(),
                                                                             task="e")["e"]
    energies, failures = chgnet.energies([nacl])
    assert not failures and energies[0] == pytest.approx(float(direct), abs=1e-6)
    assert -4.0 < energies[0] < -3.3  # eV/atom: a total energy, not a formation energy


@pytest.mark.parametrize("transform", ["rotation", "translation", "permutation", "supercell"])
def test_energy_is_invariant(chgnet, examples, nacl, transform):
    crystals = [nacl, examples.crystals[0]]
    original, _ = chgnet.energies(crystals)
    transformed, _ = chgnet.energies([TRANSFORMS[transform](c) for c in crystals])
    np.testing.assert_allclose(transformed, original, atol=2e-5)


def test_batched_energies_equal_one_by_one(chgnet, examples):
    crystals = examples.crystals[:6]
    batched, _ = chgnet.energies(crystals)
    single = np.concatenate([chgnet.energies([c])[0] for c in crystals])
    np.testing.assert_allclose(batched, single, atol=2e-5)


def test_relaxation_moves_a_perturbed_structure_not_a_relaxed_one(chgnet, nacl):
    relaxer = Chgnet(device="cpu", relax_steps=50, fmax=0.05, progress=False)
    moved, rmsd = relaxer.relax(perturbed(nacl))
    assert rmsd > 0.03
    assert chgnet.energies([moved])[0][0] < chgnet.energies([perturbed(nacl)])[0][0]
    _, rmsd = relaxer.relax(nacl)  # forces vanish by symmetry; only the cell may change
    assert rmsd < 1e-4


def test_rmsd_removes_rigid_translation_and_cell_change(nacl):
    shifted = Crystal.checked(nacl.lattice, nacl.frac_coords + [0.3, -0.2, 1.1], nacl.numbers)
    assert relaxation_rmsd(nacl, shifted) == pytest.approx(0, abs=1e-12)
    strained = Crystal.checked(nacl.lattice * 1.05, nacl.frac_coords, nacl.numbers)
    assert relaxation_rmsd(nacl, strained) == pytest.approx(0, abs=1e-12)
    # one of 8 atoms moves by d: displacements minus their mean d/8 give RMSD d·sqrt(56/512)
    frac = nacl.frac_coords.copy()
    frac[0, 0] += 0.1 / 5.64
    assert relaxation_rmsd(nacl, Crystal.checked(nacl.lattice, frac, nacl.numbers)) == \
        pytest.approx(0.1 * np.sqrt(56 / 512))


def test_energy_emd_and_failed_structures(chgnet, nacl):
    summary = chgnet_energy_emd([nacl, rotate(nacl), ISOLATED], [supercell(nacl)], chgnet)
    assert set(summary) == ENERGY_KEYS
    assert summary["energy_emd"] == pytest.approx(0, abs=2e-5)
    assert (summary["n_gen"], summary["n_ref"], summary["n_errors"]) == (2, 1, 1)
    assert summary["errors"][0]["name"] == "gen:2" and "isolated" in summary["errors"][0]["reason"]
    assert summary["energy_model"]["name"] == "chgnet"
    with pytest.raises(CrystalMetricsError, match="CHGNet gave no energy for any structure of GEN"):
        chgnet_energy_emd([ISOLATED], [nacl], chgnet)


def test_energy_emd_after_relaxation_reports_rmsd(chgnet, nacl):
    relaxer = Chgnet(device="cpu", relax_steps=20, progress=False)
    summary = chgnet_energy_emd([perturbed(nacl)], [nacl], relaxer)
    assert summary["relax_steps"] == 20 and summary["fmax"] == 0.1
    assert summary["gen_rmsd_mean"] > 0.03 and summary["ref_rmsd_mean"] < 1e-4


def test_cli_energy_with_chgnet(chgnet, tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    for cif in sorted(MP20_DIR.glob("*.cif"))[:3]:
        (folder / cif.name).write_text(cif.read_text())
    result = run("energy", folder, MP20_DIR, "--model", "chgnet", "--json", tmp_path / "e.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data) == ENERGY_KEYS | SELECTION_KEYS and (data["n_gen"], data["n_ref"]) == (3, 40)
    assert data["scored"] == "all 3 readable"
    assert data["energy_emd"] == pytest.approx(chgnet_energy_emd(folder, MP20_DIR, chgnet)
                                               ["energy_emd"], abs=1e-9)
    assert "total energy per atom" in result.output


def test_cli_rejects_options_of_the_other_model():
    result = run("energy", MP20_DIR, MP20_DIR, "--model", "chgnet", "--weights", "x")
    assert result.exit_code == 2
    assert "--weights can only be used with --model alignn" in result.output
    result = run("energy", MP20_DIR, MP20_DIR, "--relax-steps", 5)
    assert result.exit_code == 2
    assert "--relax-steps can only be used with --model chgnet" in result.output


def test_statistics_files_are_refused(tmp_path):
    with pytest.raises(CrystalMetricsError, match="statistics file"):
        Chgnet()(tmp_path / "ref.npz")


def test_missing_chgnet_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n.split(".")[0] == "chgnet"] + ["chgnet"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r"crystal-metrics\[mlip\]"):
        _ = Chgnet().model
    result = run("energy", MP20_DIR, MP20_DIR, "--model", "chgnet", "--relax-steps", 1)
    assert result.exit_code == 1
    assert "Error: CHGNet is not installed: pip install 'crystal-metrics[mlip]'" in result.output
    with pytest.raises(MissingExtraError):
        Chgnet().energies([ISOLATED])


def test_structures_above_max_atoms_are_left_out_and_named(nacl):
    pytest.importorskip("chgnet")
    small = Crystal.checked(np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17])
    summary = chgnet_energy_emd([nacl, small, rotate(small)], [small, nacl],
                                Chgnet(device="cpu", progress=False, max_atoms=2))
    assert (summary["n_gen"], summary["n_ref"]) == (2, 1)
    assert [e["name"] for e in summary["errors"]] == ["gen:0", "ref:1"]
    assert summary["errors"][0]["reason"] == (
        "8 atoms, more than --max-atoms 2: left out (CHGNet needs about 2.3 GB of memory per "
        "1,000 atoms; raise --max-atoms to include it)")
    assert summary["energy_emd"] == pytest.approx(0, abs=2e-5)
