"""Valid-only EMDs and CDVAE's random subset (GenEval): which structures, counts, the draw,
the commands that take them, and every error path."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import (
    Crystal,
    CrystalMetricsError,
    Protocol,
    Selection,
    density_emd,
    n_elements_emd,
    read_structures,
)
from crystal_metrics.api import energy_emd, evaluate
from crystal_metrics.cli import main
from crystal_metrics.errors import SubsetSizeError
from crystal_metrics.metrics.distribution import emd
from crystal_metrics.scoring import FeatureSource
from support import MP20_DIR, ROOT, VAL_CSV, caesium_chloride, rock_salt, write_cifs

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"


pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _diagonal(numbers, a=12.0):
    """Atoms on the diagonal of an a-Å cube, far apart: structurally valid."""
    frac = np.linspace(0, 1, len(numbers), endpoint=False)[:, None] * [1, 1, 1]
    return Crystal.checked(np.eye(3) * a, frac, numbers)


#: 0 NaCl (valid, 2.1637 g/cm³), 1 squeezed NaCl (atoms 0.45 Å apart), 2 KCl (valid, 1.9898),
#: 3 NaCl2 (not charge balanced), 4 CsCl-type NaCl (valid, 1.5164), 5 NaKCl5 (not charge
#: balanced, the only one with three elements).
GEN = {"nacl": rock_salt(), "squeezed": rock_salt(0.9), "kcl": rock_salt(6.29, (19, 17)),
       "nacl2": _diagonal([11, 17, 17]), "cscl": caesium_chloride(),
       "nakcl5": _diagonal([11, 19, 17, 17, 17, 17, 17])}
VALID = np.array([True, False, True, False, True, False])
REF = [rock_salt(5.5)]


def test_valid_only_keeps_the_valid_structures_in_order():
    assert Selection(valid_only=True).indices(6, VALID).tolist() == [0, 2, 4]
    assert Selection().indices(6, VALID).tolist() == [0, 1, 2, 3, 4, 5]
    gen, ref_density = list(GEN.values()), REF[0].density
    expected = np.mean(np.abs(np.array([2.1637275, 1.9898135, 1.5163516]) - ref_density))
    assert density_emd(gen, REF, Selection(valid_only=True)) == pytest.approx(expected, abs=1e-6)
    everything = np.mean(np.abs([c.density - ref_density for c in gen]))  # one REF value
    assert density_emd(gen, REF) == pytest.approx(everything)
    # number of elements: valid {2, 2, 2} against {2}: 0; all {2, 2, 2, 2, 2, 3}: 1/6
    assert n_elements_emd(gen, REF, Selection(valid_only=True)) == 0.0
    assert n_elements_emd(gen, REF) == pytest.approx(1 / 6)


def test_subset_is_cdvaes_draw():
    """CDVAE: valid = [c for c in crys if c.valid]; np.random.choice(len(valid), n_samples,
    replace=False) on numpy's global state. After np.random.seed(0) it draws valid #2 and #0."""
    valid = np.zeros(8, bool)
    valid[[0, 2, 3, 5, 7]] = True
    assert Selection(True, 2, seed=0).indices(8, valid).tolist() == [0, 3]  # valid #0 and #2
    for seed in range(20):
        np.random.seed(seed)
        drawn = np.flatnonzero(valid)[np.random.choice(5, 3, replace=False)]
        assert Selection(True, 3, seed=seed).indices(8, valid).tolist() == sorted(drawn)
    assert Selection(True, 5, seed=4).indices(8, valid).tolist() == [0, 2, 3, 5, 7]  # all of them
    np.random.seed(1)  # without valid_only: from every structure
    assert Selection(False, 3, seed=1).indices(4).tolist() == sorted(
        np.random.choice(4, 3, replace=False))


def test_too_few_and_no_valid_structures_are_errors():
    with pytest.raises(SubsetSizeError,
                       match=r"^GEN has 3 valid structures, fewer than the 4 asked for"):
        Selection(True, 4).indices(6, VALID)
    with pytest.raises(CrystalMetricsError, match=r"^GEN has no valid structure to score \(of 2"):
        Selection(True).indices(2, np.zeros(2, bool))
    with pytest.raises(CrystalMetricsError, match="needs the structures themselves"):
        Selection(True).indices(6)  # a statistics file: no structures, no validity
    with pytest.raises(CrystalMetricsError, match="n_samples must be at least 1"):
        Selection(True, 0)


def test_density_cli_names_what_it_scored(tmp_path):
    folder = write_cifs(tmp_path / "gen", GEN)
    out = tmp_path / "d.json"
    result = run("density", folder, folder, "--valid-only", "--n-samples", 2, "--seed", 1,
                 "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert (data["valid_only"], data["n_samples"], data["seed"]) == (True, 2, 1)
    assert (data["n_gen"], data["n_valid"], data["n_scored"]) == (6, 3, 2)
    assert data["oxidation_states"] == "smact221"
    line = "2 drawn at random (seed 1) from the 3 valid of 6 readable"
    assert data["scored"] == line and f"GEN scored            {line}" in result.output
    structures = read_structures(folder)  # read back in name order
    valid = np.array([structures.names[i] in {"nacl", "kcl", "cscl"} for i in range(6)])
    keep = Selection(True, 2, 1).indices(6, valid)
    expected = emd([structures.crystals[i].density for i in keep],
                   [c.density for c in structures.crystals])
    assert data["density_emd"] == pytest.approx(expected)


def test_energy_valid_only_embeds_only_the_scored_structures(tmp_path):
    folder = write_cifs(tmp_path / "gen", GEN)
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    gen, ref = source(folder), source(VAL_CSV)
    structures = read_structures(folder)
    valid = [i for i, n in enumerate(structures.names) if n in {"nacl", "kcl", "cscl"}]
    expected = emd(gen.energies[valid], ref.energies)
    assert energy_emd(folder, VAL_CSV, source, Selection(valid_only=True)) == pytest.approx(expected)
    out = tmp_path / "e.json"
    result = run("energy", folder, VAL_CSV, "--weights", WEIGHTS, "--valid-only", "--json", out)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["energy_emd"] == pytest.approx(expected) and data["n_gen"] == 3
    assert data["scored"] == "the 3 valid of 6 readable"


def test_statistics_file_can_be_subset_but_not_filtered(tmp_path):
    assert run("stats", MP20_DIR, "-o", tmp_path / "gen.npz", "--weights", WEIGHTS).exit_code == 0
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    stats = source(tmp_path / "gen.npz")
    keep = Selection(False, 10, 3).indices(40)
    expected = emd(stats.energies[keep], source(VAL_CSV).energies)
    assert energy_emd(tmp_path / "gen.npz", VAL_CSV, source, Selection(False, 10, 3)) == \
        pytest.approx(expected)
    result = run("energy", tmp_path / "gen.npz", VAL_CSV, "--weights", WEIGHTS, "--valid-only")
    assert result.exit_code == 1
    assert "Error: valid-only scoring needs the structures themselves to check validity" in \
        result.output


@pytest.mark.parametrize("command", ["density", "energy", "evaluate"])
def test_asking_for_more_structures_than_are_valid_is_a_usage_error(command):
    result = run(command, MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--valid-only",
                 "--n-samples", 40) if command != "density" else \
        run(command, MP20_DIR, VAL_CSV, "--valid-only", "--n-samples", 40)
    assert result.exit_code == 2, result.output
    assert "Error: GEN has 39 valid structures, fewer than the 40 asked for (--n-samples)" in \
        result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--n-samples", 0], "Invalid value for '--n-samples'"),
    (["--seed", -1], "Invalid value for '--seed'"),
    (["--oxidation-states", "smact3"], "Invalid value for '--oxidation-states'"),
])
def test_bad_selection_options_exit_2(args, message):
    result = run("density", MP20_DIR, VAL_CSV, *args)
    assert result.exit_code == 2 and message in result.output


def test_no_valid_structure_exits_1(tmp_path):
    folder = write_cifs(tmp_path / "gen", {"nacl2": GEN["nacl2"], "nakcl5": GEN["nakcl5"]})
    result = run("density", folder, VAL_CSV, "--valid-only")
    assert result.exit_code == 1
    assert "Error: GEN has no valid structure to score (of 2 readable)" in result.output


@pytest.mark.filterwarnings("ignore::crystal_metrics.scoring.SmallSampleWarning")
def test_evaluate_draws_only_among_the_structures_it_can_embed():
    """Structures above --max-atoms are listed as not embedded and never drawn: the subset is
    CDVAE's draw among the valid structures that remain, and every scored structure has its
    features, density and energy."""
    crystals = read_structures(MP20_DIR).crystals
    limit = sorted(c.n_atoms for c in crystals)[-6]
    limited = FeatureSource(WEIGHTS, device="cpu", progress=False, max_atoms=limit)
    evaluation = evaluate(MP20_DIR, VAL_CSV, limited, Protocol(valid_only=True, n_samples=10),
                          seed=2, workers=1)
    small = np.array([c.n_atoms <= limit for c in crystals])
    pool = np.flatnonzero(small & evaluation.validity.overall)
    assert 10 < len(pool) < 39 and not small.all()
    expected = pool[Selection(True, 10, 2).indices(len(pool), np.ones(len(pool), bool))]
    assert evaluation.scored.tolist() == expected.tolist()
    summary = evaluation.summary()
    assert summary["n_scored"] == 10 and summary["n_not_embedded"] >= (~small).sum()
    assert summary["scored"] == f"10 drawn at random (seed 2) from the {len(pool)} valid of " \
                                f"{small.sum()} readable"
    scored = evaluation.scored_features
    np.testing.assert_array_equal(scored.densities, [crystals[i].density for i in expected])
    np.testing.assert_array_equal(scored.energies, evaluation.energies[expected])
    assert np.isnan(evaluation.energies[~small]).all()
    assert summary["density_emd"] == pytest.approx(emd(scored.densities,
                                                       evaluation.reference.densities))
