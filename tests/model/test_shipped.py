"""The checkpoint shipped with the package (MP-20 train_partial + val, see docs/results.md)."""
from click.testing import CliRunner
from pymatgen.core import Composition, Structure

from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import DEFAULT_CHECKPOINT, main


def test_shipped_checkpoint_is_the_default_and_small():
    assert DEFAULT_CHECKPOINT.is_file()
    assert DEFAULT_CHECKPOINT.stat().st_size < 10 * 2 ** 20
    _, schedule, standardizer, config = load_model(DEFAULT_CHECKPOINT)
    assert config.model.hidden == 192 and schedule.sigma_max == 0.5
    assert len(standardizer.mean) == 6


def test_shipped_checkpoint_samples_four_structures_on_cpu(tmp_path):
    out = tmp_path / "lifeo2"
    result = CliRunner().invoke(main, ["--composition", "LiFeO2", "-n", "4", "--out", str(out),
                                       "--steps", "50", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.cif"))
    assert [f.name for f in files] == [f"LiFeO2_{k}.cif" for k in range(4)]
    for f in files:
        s = Structure.from_file(f)
        assert s.composition == Composition("LiFeO2")
        # a trained model, not noise: LiFeO2 polymorphs have 4.3-4.8 g/cm3
        assert 3.0 < s.density < 6.5, (f.name, s.density)
