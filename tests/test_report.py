"""`evaluate --report`: worst-structure tables worked by hand, the page, the PNGs, error paths."""
import base64
import re
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import CrystalMetricsError, StructureSet, read_structures
from crystal_metrics.api import evaluate
from crystal_metrics.cli import main
from crystal_metrics.features import ExtractorId, FeatureSet
from crystal_metrics.metrics.validity import validity
from crystal_metrics.report import (
    FIGURES,
    check_report_writable,
    figures,
    report_paths,
    robust_z,
    worst_structures,
    write_report,
)
from crystal_metrics.results import Evaluation
from crystal_metrics.scoring import FeatureSource
from support import MP20_DIR, ROOT, VAL_CSV, rock_salt

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
MAD_TO_SIGMA = 1.4826


pytestmark = pytest.mark.usefixtures("cache_in_tmp")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _statistics(densities, energies) -> FeatureSet:
    n = len(densities)
    return FeatureSet(np.zeros((n, 2)), np.array(energies, float), np.array(densities, float),
                             np.ones(n, int), ExtractorId("test", "0" * 64, 2))


@pytest.fixture
def hand_made() -> Evaluation:
    """Four structures whose ranks by every criterion are worked out in the comments."""
    from crystal_metrics import Crystal

    def diagonal(numbers):  # atoms on the diagonal of a 12 Å cube: 4√3 = 6.928 Å apart
        frac = np.linspace(0, 1, len(numbers), endpoint=False)[:, None] * [1, 1, 1]
        return Crystal.checked(np.eye(3) * 12.0, frac, numbers)

    names = ["nacl", "squeezed", "nacl2", "o2f"]
    crystals = [rock_salt(), rock_salt(0.9), diagonal([11, 17, 17]), diagonal([8, 8, 9])]
    # min distances 2.82, 0.45 (invalid), 6.928, 6.928; SMACT: NaCl2 and O2F invalid.
    # REF densities 5..8 and 100: median 7, MAD 1 -> GEN z = 0, +2, -3, +0.5.
    # REF energies 2, 2, 2, 2, 6: MAD 0, so the standard deviation 1.6 -> GEN z = +1, -4, 0, +2.
    gen = _statistics([7, 7 + 2 * MAD_TO_SIGMA, 7 - 3 * MAD_TO_SIGMA, 7 + 0.5 * MAD_TO_SIGMA],
                      [2 + 1.6, 2 - 4 * 1.6, 2, 2 + 2 * 1.6])
    ref = _statistics([5, 6, 7, 8, 100], [2, 2, 2, 2, 6])
    return Evaluation(StructureSet(names, crystals), gen, validity(crystals), ref)


def test_robust_z_hand_worked():
    np.testing.assert_allclose(robust_z([3 + MAD_TO_SIGMA, 3], [1, 2, 3, 4, 100]), [1, 0])
    # zero MAD falls back to the standard deviation: mean 2.8, std 1.6
    np.testing.assert_allclose(robust_z([3.6], [2, 2, 2, 2, 6]), [1.0])
    np.testing.assert_allclose(robust_z([5.0, 3.0], [3, 3, 3]), [2.0, 0.0])  # constant: scale 1


def test_worst_structures_hand_worked(hand_made):
    tables = worst_structures(hand_made, k=4)
    assert list(tables) == ["shortest interatomic distance", "compositionally invalid (SMACT): 2 of 4",
                            "density furthest from the reference",
                            "formation energy furthest from the reference"]
    columns, rows = tables["shortest interatomic distance"]
    assert columns == ("min distance (Å)", "structurally valid")
    assert [(r.name, r.formula, r.values) for r in rows] == [
        ("squeezed", "Na4Cl4", ("0.450", "no")), ("nacl", "Na4Cl4", ("2.820", "yes")),
        ("nacl2", "NaCl2", ("6.928", "yes")), ("o2f", "O2F", ("6.928", "yes"))]
    columns, rows = tables["compositionally invalid (SMACT): 2 of 4"]
    assert columns == () and [(r.name, r.values) for r in rows] == [("nacl2", ()), ("o2f", ())]
    _, rows = tables["density furthest from the reference"]
    assert [(r.name, r.values[1]) for r in rows] == [
        ("nacl2", "-3.0"), ("squeezed", "+2.0"), ("o2f", "+0.5"), ("nacl", "+0.0")]
    assert rows[0].values[0] == f"{7 - 3 * MAD_TO_SIGMA:.3f}"
    columns, rows = tables["formation energy furthest from the reference"]
    assert columns == ("formation energy (eV/atom)", "robust z vs REF")
    assert [(r.name, r.values) for r in rows] == [
        ("squeezed", ("-4.400", "-4.0")), ("o2f", ("5.200", "+2.0")), ("nacl", ("3.600", "+1.0")),
        ("nacl2", ("2.000", "+0.0"))]
    assert [len(rows) for _, rows in worst_structures(hand_made, k=1).values()] == [1, 1, 1, 1]


@pytest.fixture(scope="module")
def evaluation():
    """The 40 example structures against the val sample; the two that head the compositional and
    the shortest-distance tables renamed to need HTML escaping."""
    structures = read_structures(MP20_DIR)
    renamed = {"mp-21383": "<b>bold</b>", "mp-756217": "a&b"}
    names = [renamed.get(name, name) for name in structures.names]
    source = FeatureSource(WEIGHTS, device="cpu", progress=False)
    with pytest.warns(UserWarning, match="fewer than"):
        return evaluate(StructureSet(names, structures.crystals), VAL_CSV, source)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_page_and_figures(evaluation, tmp_path):
    page = write_report(tmp_path / "report", evaluation, ("gen/<dir>", "ref.csv"))
    assert page == tmp_path / "report" / "index.html"
    assert sorted(p.name for p in page.parent.iterdir()) == sorted(p.name for p in report_paths(page.parent))
    text = page.read_text()
    sizes = {name: _png_size((page.parent / f"{name}.png").read_bytes()) for name in FIGURES}
    assert sizes == {"density": (550, 340), "energy": (550, 340), "n_elements": (550, 340),
                     "crystal_systems": (550, 340), "validity": (900, 340)}
    inlined = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert [base64.b64decode(s) for s in inlined] == [
        (page.parent / f"{name}.png").read_bytes() for name in FIGURES]  # self-contained
    assert "gen/&lt;dir&gt;" in text and "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold" not in text
    assert "a&amp;b" in text
    fad = evaluation.summary()["fad"]
    assert f'<td>FAD</td><td class="num">{fad:.4f}</td>' in text
    assert "compositionally invalid (SMACT): 1 of 40" in text and "EuSi2Rh2" in text
    assert "<h2>Unreadable structures (0)</h2>" in text


def test_report_never_replaces_files_without_overwrite(evaluation, tmp_path):
    folder = tmp_path / "report"
    write_report(folder, evaluation)
    before = (folder / "density.png").stat().st_mtime_ns
    with pytest.raises(CrystalMetricsError, match="index.html exists"):
        write_report(folder, evaluation)
    assert (folder / "density.png").stat().st_mtime_ns == before
    write_report(folder, evaluation, overwrite=True)
    (folder / "notes.txt").write_text("mine")
    write_report(folder, evaluation, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"  # other files in the folder are kept


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing" / "report", "folder .*missing does not exist"),
    (lambda tmp: tmp / "file.txt", "it is a file"),
])
def test_report_folder_that_cannot_be_made(tmp_path, make, message):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CrystalMetricsError, match=message):
        check_report_writable(make(tmp_path))


def test_cli_report_and_its_checks_before_any_work(tmp_path):
    folder = tmp_path / "report"
    result = run("evaluate", MP20_DIR, VAL_CSV, "--weights", WEIGHTS, "--report", folder)
    assert result.exit_code == 0, result.output
    assert f"report -> {folder / 'index.html'}" in result.output
    assert all(p.is_file() for p in report_paths(folder))
    # existing report: usage error before GEN is read (GEN does not even exist here)
    result = run("evaluate", "no_such_gen", VAL_CSV, "--weights", WEIGHTS, "--report", folder)
    assert result.exit_code == 2 and "index.html exists; pass --overwrite" in result.output
    result = run("evaluate", "no_such_gen", VAL_CSV, "--report", tmp_path / "a" / "b")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_energies_without_reference_are_ranked_last_and_left_out_of_histograms(hand_made):
    # ALIGNN-FF formation energies are NaN for elements without a JARVIS reference
    gen = _statistics(hand_made.features.densities, [np.nan, 2 - 4 * 1.6, 2, 2 + 2 * 1.6])
    ref = _statistics([5, 6, 7, 8, 100, 7], [2, 2, 2, 2, 6, np.nan])  # median 7, MAD 1 as before
    evaluation = Evaluation(hand_made.structures, gen, hand_made.validity, ref)
    _, rows = worst_structures(evaluation, k=4)["formation energy furthest from the reference"]
    assert [(r.name, r.values[1]) for r in rows] == [
        ("squeezed", "-4.0"), ("o2f", "+2.0"), ("nacl2", "+0.0"), ("nacl", "+nan")]
    images = figures(evaluation)
    assert _png_size(images["energy"]) == (550, 340)


@pytest.mark.parametrize("where", ["folder", "parent"])
def test_read_only_report_folder_exits_2_before_any_work(read_only_dir, where):
    folder = read_only_dir if where == "folder" else read_only_dir / "report"
    result = run("evaluate", "no_such_gen", VAL_CSV, "--report", folder)
    assert result.exit_code == 2 and "Traceback" not in result.output
    target = folder / "index.html" if where == "folder" else folder
    assert result.output.startswith(f"Error: cannot write {target}: ")
    assert result.output.endswith(f" in {read_only_dir}\n") and list(read_only_dir.iterdir()) == []


def test_json_inside_the_report_folder_is_refused_before_any_work(tmp_path):
    result = run("evaluate", "no_such_gen", VAL_CSV, "--report", tmp_path / "r", "--json",
                 tmp_path / "r" / "index.html")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output == (f"Error: --report {tmp_path / 'r' / 'index.html'} is also the file of "
                             "--json: give every output its own file\n")
    assert list(tmp_path.iterdir()) == []


def test_the_page_names_the_protocol_and_the_reference_with_paths_relative_to_it(evaluation,
                                                                                 tmp_path):
    from crystal_metrics.metrics.periodic import min_distances

    np.testing.assert_array_equal(evaluation.reference_min_distance,
                                  min_distances(read_structures(VAL_CSV).crystals))
    folder = tmp_path / "deep" / "report"
    folder.parent.mkdir()
    gen = tmp_path / "gen"
    gen.mkdir()
    text = write_report(folder, evaluation, (str(gen), "mp20-test")).read_text()
    assert "GEN: <code>../../gen</code>" in text and str(tmp_path) not in text
    assert "REF: <code>mp20-test</code> (shipped reference: 9,046 structures, Materials Project" in text
    assert "protocol: name <code>custom</code>, oxidation_states <code>smact221</code>" in text
    assert f"extractor: {evaluation.reference.extractor}</p>" in text
    # GEN's distances alone when REF is a statistics file (no structures)
    hand = Evaluation(evaluation.structures, evaluation.features, evaluation.validity,
                      evaluation.reference, evaluation.embedded, evaluation.scored,
                      evaluation.space_groups, evaluation.scores)
    assert hand.reference_min_distance is None
    assert _png_size(figures(hand)["validity"]) == (900, 340)
