"""The checkpoint shipped with the package (trained on MP-20 val, see docs/results.md)."""
from click.testing import CliRunner
from pymatgen.core import Composition, Structure

from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import DEFAULT_CHECKPOINT, main


def test_shipped_checkpoint_is_the_default_and_small():
    assert DEFAULT_CHECKPOINT.is_file()
    assert DEFAULT_CHECKPOINT.stat().st_size < 20 * 2 ** 20
    model, schedule, _, config = load_model(DEFAULT_CHECKPOINT)
    assert config.model.hidden == 128 and config.model.knn == 32 and schedule.steps == 100
    assert sum(p.numel() for p in model.parameters()) == 808071


def test_shipped_checkpoint_samples_four_structures_on_cpu(tmp_path):
    out = tmp_path / "lifeo2"
    result = CliRunner().invoke(main, ["--composition", "LiFeO2", "-n", "4", "--out", str(out),
                                       "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.cif"))
    assert [f.name for f in files] == [f"LiFeO2_{k}.cif" for k in range(4)]
    for f in files:
        s = Structure.from_file(f)
        assert s.composition == Composition("LiFeO2")
        # a trained model, not noise: LiFeO2 polymorphs have 4.3-4.8 g/cm3, the prior cell
        # exp(N(0, I)) gives ~0.01-100
        assert 2.0 < s.density < 7.0, (f.name, s.density)
