import csv
import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner
from pymatgen.core import Composition, Structure

from gemsdiff_model.sample import main, run_sampling
from gemsdiff_model.train import run_training


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from gemsdiff_model.config import Config, ModelConfig, TrainConfig

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    config = Config(model=ModelConfig(hidden=16, enc_layers=1, dec_layers=1, knn=8, n_rbf=8, n_angle=3),
                    train=TrainConfig(epochs=1, batch_size=6, val_fraction=0.0))
    run_training(config, str(Path(__file__).parent / "data"), out / "run", "cpu", progress=False)
    return out / "run"


def read_manifest(folder):
    return list(csv.DictReader(open(folder / "manifest.csv")))


def test_composition_exact_and_cifs_parse(checkpoint, tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(out),
                                  "--composition", "LiFeO2", "--composition", "Si", "-n", "2",
                                  "--steps", "10", "--seed", "3", "--batch-atoms", "5",
                                  "--no-progress", "--threads", "1"])
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    assert [row["name"] for row in rows] == ["LiFeO2_0", "LiFeO2_1", "Si_0", "Si_1"]
    assert all(row["seed"] == "3" for row in rows)
    for row in rows:
        s = Structure.from_file(out / f"{row['name']}.cif")
        assert s.composition == Composition(row["composition"])
        assert s.is_ordered and s.lattice.volume > 0


def test_system_enumeration_respects_max_atoms(checkpoint, tmp_path):
    out = tmp_path / "s"
    rows = run_sampling(checkpoint, out, system="Li-O", max_atoms=3, steps=5, progress=False)
    assert sorted(r["composition"] for r in rows) == ["Li2O", "LiO", "LiO2"]
    for r in rows:
        assert len(Structure.from_file(out / f"{r['name']}.cif")) <= 3


def test_from_csv_keeps_material_id_and_skips_large(checkpoint, tmp_path, data_dir):
    path = tmp_path / "set.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "pretty_formula", "cif"])
        for name in ("mp-1623", "mp-1913"):
            text = (data_dir / f"{name}.cif").read_text()
            writer.writerow([name, Structure.from_str(text, "cif").composition.reduced_formula, text])
    out = tmp_path / "s"
    rows = run_sampling(checkpoint, out, from_csv=str(path), max_atoms=3, steps=5, progress=False)
    assert [(r["name"], r["source_id"], r["composition"]) for r in rows] == [("mp-1623_0", "mp-1623", "ErS")]
    assert Structure.from_file(out / "mp-1623_0.cif").composition == Composition("ErS")


def test_same_seed_same_structures(checkpoint, tmp_path):
    a = run_sampling(checkpoint, tmp_path / "a", composition=("NaCl",), steps=5, seed=7, progress=False)
    b = run_sampling(checkpoint, tmp_path / "b", composition=("NaCl",), steps=5, seed=7, progress=False)
    assert a == b
    assert (tmp_path / "a" / "NaCl_0.cif").read_text() == (tmp_path / "b" / "NaCl_0.cif").read_text()


@pytest.mark.parametrize("args, message", [
    (["--composition", "Xx2"], "cannot parse composition"),
    (["--composition", "Li0.5O"], "not a positive integer"),
    (["--composition", "Li30O"], "more than --max-atoms"),
    (["--system", "Li-Qq"], "not an element"),
    (["--composition", "LiO", "--steps", "0"], "--steps must be between"),
    (["--composition", "LiO", "--restarts", "-1"], "--restarts must be 0 or more"),
    (["--composition", "LiO", "--restarts", "1", "--restart-step", "0"],
     "--restart-step must be between 1 and 100"),
    (["--composition", "LiO", "--restarts", "1", "--restart-step", "101"],
     "--restart-step must be between 1 and 100"),
    (["--composition", "LiO", "--system", "Li-O"], "exactly one of"),
    ([], "exactly one of"),
])
def test_error_messages_one_line(checkpoint, tmp_path, args, message):
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
                                  "--no-progress", *args])
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_missing_checkpoint_and_non_empty_out(checkpoint, tmp_path):
    r = CliRunner().invoke(main, ["--checkpoint", str(tmp_path / "nope.pt"), "--out",
                                  str(tmp_path / "o"), "--composition", "LiO"])
    assert r.exit_code == 1 and "does not exist" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    r = CliRunner().invoke(main, ["--checkpoint", str(bad), "--out", str(tmp_path / "o"),
                                  "--composition", "LiO"])
    assert r.exit_code == 1 and "cannot read checkpoint" in r.output
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.cif").write_text("keep")
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(full),
                                  "--composition", "LiO"])
    assert r.exit_code == 1 and "not empty" in r.output
    assert (full / "x.cif").read_text() == "keep"


def test_on_step_sees_every_state_down_to_the_returned_crystal(checkpoint):
    import torch

    from gemsdiff_model.checkpoint import load_model
    from gemsdiff_model.geometry import to_canonical_basis
    from gemsdiff_model.sample import generate

    model, schedule, _, config = load_model(checkpoint / "best.pt")
    assert config.model.lattice_head == "coords"  # the default head keeps an unreduced chain
    seen = []
    numbers = [[3, 26, 8, 8], [14]]
    lattices, fracs = generate(model, schedule, numbers, steps=7, generator=torch.Generator().manual_seed(0),
                               on_step=lambda s, lattice, frac: seen.append((s, lattice, frac)))
    # timesteps(100, 7): linspace(100, 1, 7) = 100, 83.5, 67, 50.5, 34, 17.5, 1 rounded half to even
    assert [s for s, _, _ in seen] == [84, 67, 50, 34, 18, 1, 0]
    assert [tuple(lat.shape) for _, lat, _ in seen] == [(2, 3, 3)] * 7
    assert all(tuple(frac.shape) == (5, 3) for _, _, frac in seen)
    _, last_lattice, last_frac = seen[-1]
    reduced, frac = to_canonical_basis(last_lattice, last_frac, torch.tensor([0, 0, 0, 0, 1]))
    torch.testing.assert_close(reduced.double(), lattices)
    torch.testing.assert_close(frac.double(), torch.cat(fracs))


def test_restart_rounds_run_after_the_chain(checkpoint, tmp_path):
    import torch

    from gemsdiff_model.checkpoint import load_model
    from gemsdiff_model.geometry import to_canonical_basis
    from gemsdiff_model.sample import generate

    model, schedule, _, _ = load_model(checkpoint / "best.pt")
    numbers = [[3, 26, 8, 8], [14]]
    seen = []
    lattices, fracs = generate(model, schedule, numbers, steps=7, generator=torch.Generator().manual_seed(0),
                               restarts=2, restart_step=3,
                               on_step=lambda s, lattice, frac: seen.append((s, lattice, frac)))
    assert [s for s, _, _ in seen] == [84, 67, 50, 34, 18, 1, 0] + [2, 1, 0] * 2
    _, last_lattice, last_frac = seen[-1]
    reduced, frac = to_canonical_basis(last_lattice, last_frac, torch.tensor([0, 0, 0, 0, 1]))
    torch.testing.assert_close(reduced.double(), lattices)
    torch.testing.assert_close(frac.double(), torch.cat(fracs))
    plain = generate(model, schedule, numbers, steps=7, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(plain[0], lattices)  # the restarts moved the sample
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "s"),
                                  "--composition", "LiFeO2", "--steps", "5", "--restarts", "2",
                                  "--restart-step", "4", "--no-progress", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert Structure.from_file(tmp_path / "s" / "LiFeO2_0.cif").composition == Composition("LiFeO2")
