"""Compositional validity against CDVAE's code with SMACT 2.2.1 (golden) and SMACT 4's own
`smact_validity` (smact14), with hand-worked Pm, Ir and Zr cases."""
import gzip
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import CrystalMetricsError, validity
from crystal_metrics.cli import main
from crystal_metrics.metrics.smact_check import (
    DIFFCSP_MAX_COMBINATIONS,
    _cdvae_pauling_test,
    _neutral_with_pauling_order,
    smact_table,
    smact_valid,
)
from support import MP20_DIR, ROOT, smact4_valid

DATA = ROOT / "tests" / "data" / "validity"


def _parse(key: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """'Z:count Z:count ...' -> (atomic numbers, counts)."""
    numbers, counts = zip(*[map(int, part.split(":")) for part in key.split()])
    return tuple(numbers), tuple(counts)


@pytest.fixture(scope="module")
def golden():
    """CDVAE's smact_validity with smact 2.2.1 on every composition of MP-20 test
    (make_cdvae_smact_golden.py): {composition: [number of structures, flag]}."""
    with gzip.open(DATA / "cdvae_smact221_mp20_test.json.gz", "rt") as f:
        return json.load(f)


def test_agrees_with_cdvae_and_smact_2_2_1_on_all_of_mp20_test(golden):
    ours = {key: smact_valid(*_parse(key)) for key in golden["compositions"]}
    wrong = [key for key, (_, flag) in golden["compositions"].items() if ours[key] != flag]
    assert not wrong
    n_valid = sum(n * ours[key] for key, (n, _) in golden["compositions"].items())
    assert (n_valid, golden["n_structures"]) == (8244, 9046)  # 0.9113, the number
    assert len(golden["compositions"]) == 8534


def test_the_14_mp20_test_structures_where_the_tables_differ():
    rows = json.loads((DATA / "mp20_test_smact_differences.json").read_text())["structures"]
    assert len(rows) == 14 and len({r["material_id"] for r in rows}) == 14
    for row in rows:
        numbers, counts = _parse(row["composition"])
        assert smact_valid(numbers, counts, "smact221") is row["smact221"], row["formula"]
        assert smact_valid(numbers, counts, "smact14") is row["smact14"], row["formula"]
    # valid only with smact221: 8 with Pm and 3 with Ir -2; only with smact14: 3 with Ir -3
    assert sum(r["smact221"] for r in rows) == 11 and sum(r["smact14"] for r in rows) == 3
    assert sum("Pm" in r["formula"] for r in rows) == 8


def test_smact14_agrees_with_smact_4_on_mp20_test_compositions(golden):
    keys = sorted(golden["compositions"])[::8]  # about 1,070 of the 8,534, spread over the table
    keys += [row["composition"] for row in json.loads(
        (DATA / "mp20_test_smact_differences.json").read_text())["structures"]]
    wrong = [k for k in keys if smact_valid(*_parse(k), "smact14") != smact4_valid(*_parse(k))]
    assert not wrong


def test_shipped_smact14_table_is_smact_4s():
    import smact

    table = smact_table("smact14")
    for z, states in table.oxidation_states.items():
        element = smact.Element(smact.ordered_elements(z, z)[0])
        assert states == tuple(element.oxidation_states_smact14 or ())
        assert table.electronegativity[z] == element.pauling_eneg
    assert {smact.ordered_elements(z, z)[0] for z in table.metals} == set(smact.metals)


@pytest.mark.parametrize("formula, numbers, counts, smact221, smact14", [
    # Pm has no Pauling electronegativity. H(-1) and Pm(+3) have opposite charges: SMACT 2.2.1
    # compares None and raises TypeError, which CDVAE counts as passed; SMACT 4 fails it.
    ("PmH3", (1, 61), (3, 1), True, False),
    ("PmCl3", (17, 61), (3, 1), True, False),
    # Li(+1) Cl(-1) Pm(+3) is the only neutral assignment. Pairs in order of Z: (Li, Cl) passes,
    # then (Li, Pm) are both cations and Pm has no value: the test fails before (Cl, Pm) is seen.
    ("LiPmCl4", (3, 17, 61), (1, 4, 1), False, False),
    # Ir: -2 in SMACT 2.2.1, -3 in smact14 (B: +1 +2 +3, electronegativity 2.04 < Ir's 2.2).
    ("B2Ir", (5, 77), (2, 1), True, False),     # 2 x (+1) + (-2)
    ("B3Ir2", (5, 77), (3, 2), False, True),    # 3 x (+2) + 2 x (-3)
    # Zr: Pauling electronegativity 0.33 in SMACT 2.2.1, 1.33 in smact14. Zr(+2) Na(-1) H(-1)
    # needs Zr below Na's 0.93.
    ("HNaZr", (1, 11, 40), (1, 1, 1), True, False),
    ("NaCl", (11, 17), (1, 1), True, True),
    ("NaCl2", (11, 17), (1, 2), False, False),
    ("O2F", (8, 9), (2, 1), False, False),      # both anions
    ("CuAu", (29, 79), (1, 1), True, True),     # all metals
    ("Og", (118,), (1,), True, True),           # one element
    ("OgO", (8, 118), (1, 1), False, False),    # Og has no SMACT data (CDVAE's code stops)
    ("HeO", (2, 8), (1, 1), False, False),      # He has no oxidation state
])
def test_hand_worked(formula, numbers, counts, smact221, smact14):
    assert smact_valid(numbers, counts, "smact221") is smact221
    assert smact_valid(numbers, counts, "smact14") is smact14


def test_diffcsp_limit_on_oxidation_state_combinations():
    # C N Si P S Cl (8 states each), Br (7), I (6): 8^6 x 7 x 6 = 11,010,048 combinations, more
    # than 1e7: DiffCSP calls it invalid; CDVAE enumerates them all and finds a neutral one.
    numbers = (6, 7, 14, 15, 16, 17, 35, 53)
    states = [smact_table().oxidation_states[z] for z in numbers]
    assert np.prod([len(s) for s in states]) == 11_010_048
    counts = (1,) * len(numbers)
    assert smact_valid(numbers, counts) is True
    assert smact_valid(numbers, counts, max_combinations=DIFFCSP_MAX_COMBINATIONS) is False


@pytest.mark.parametrize("seed", range(3))
def test_cut_search_equals_enumerating_every_combination(seed):
    """Without missing electronegativities, the search over cuts gives what CDVAE's loop over
    all combinations gives (charge neutral and Pauling order), on random compositions."""
    rng = np.random.default_rng(seed)
    table = smact_table()
    pool = [z for z, e in table.electronegativity.items()
            if e is not None and table.oxidation_states[z]]
    for _ in range(150):
        numbers = tuple(sorted(rng.choice(pool, size=rng.integers(2, 5), replace=False).tolist()))
        counts = tuple(rng.integers(1, 7, size=len(numbers)).tolist())
        states = [table.oxidation_states[z] for z in numbers]
        enegs = [table.electronegativity[z] for z in numbers]
        expected = any(sum(q * c for q, c in zip(combination, counts)) == 0
                       and _cdvae_pauling_test(combination, enegs)
                       for combination in itertools.product(*states))
        assert _neutral_with_pauling_order(states, counts, enegs) is expected, numbers


def test_validity_names_its_table_and_unknown_tables_are_errors(examples):
    result = validity(examples, "smact14")
    assert result.oxidation_states == "smact14"
    with pytest.raises(CrystalMetricsError, match="unknown oxidation-state table 'smact9'"):
        validity(examples, "smact9")


def test_cli_oxidation_states(tmp_path):
    out = tmp_path / "v.json"
    result = CliRunner().invoke(main, ["validity", str(MP20_DIR), "--oxidation-states", "smact14",
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "(oxidation states smact14)" in result.output
    assert json.loads(out.read_text())["oxidation_states"] == "smact14"
    result = CliRunner().invoke(main, ["validity", str(MP20_DIR), "--oxidation-states", "smact9"])
    assert result.exit_code == 2 and "'smact9' is not one of" in result.output
