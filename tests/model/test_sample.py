import csv
import gzip
import json

import pytest
import torch
from click.testing import CliRunner
from pymatgen.core import Composition, Structure

from gemsdiff_model.checkpoint import load_model
from gemsdiff_model.sample import main, run_sampling
from gemsdiff_model.sampler import generate, noise_levels
from gemsdiff_model.trainer import run_training

FAST = ["--steps", "4", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from pathlib import Path

    from gemsdiff_model.config import Config, ModelConfig, TrainConfig

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    config = Config(model=ModelConfig(hidden=16, enc_layers=1, dec_layers=1, n_freq=4, n_rbf=4),
                    train=TrainConfig(epochs=1, batch_size=6, val_fraction=0.0))
    run_training(config, str(Path(__file__).parent / "data"), out / "run", "cpu", progress=False)
    return out / "run"


def read_manifest(folder):
    return list(csv.DictReader(open(folder / "manifest.csv")))


def test_composition_exact_and_cifs_parse(checkpoint, tmp_path):
    out = tmp_path / "s"
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(out),
                                  "--composition", "LiFeO2", "--composition", "Si", "-n", "2",
                                  "--seed", "3", "--batch-atoms", "5", *FAST])
    assert r.exit_code == 0, r.output
    rows = read_manifest(out)
    assert [row["name"] for row in rows] == ["LiFeO2_0", "LiFeO2_1", "Si_0", "Si_1"]
    assert all(row["seed"] == "3" for row in rows)
    for row in rows:
        s = Structure.from_file(out / f"{row['name']}.cif")
        assert s.composition == Composition(row["composition"])
        assert s.is_ordered and s.lattice.volume > 0
    settings = json.loads((out / "sampling.json").read_text())
    assert settings["complete"] and settings["planned"] == 4 and settings["steps"] == 4


def test_system_enumeration_respects_max_atoms(checkpoint, tmp_path):
    out = tmp_path / "s"
    rows = run_sampling(checkpoint, out, system="Li-O", max_atoms=3, steps=3, progress=False)
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
    rows = run_sampling(checkpoint, out, from_csv=str(path), max_atoms=3, steps=3, progress=False)
    assert [(r["name"], r["source_id"], r["composition"]) for r in rows] == [("mp-1623_0", "mp-1623", "ErS")]
    assert Structure.from_file(out / "mp-1623_0.cif").composition == Composition("ErS")


def test_same_seed_same_structures(checkpoint, tmp_path):
    a = run_sampling(checkpoint, tmp_path / "a", composition=("NaCl",), steps=3, seed=7, progress=False)
    b = run_sampling(checkpoint, tmp_path / "b", composition=("NaCl",), steps=3, seed=7, progress=False)
    assert a == b
    assert (tmp_path / "a" / "NaCl_0.cif").read_text() == (tmp_path / "b" / "NaCl_0.cif").read_text()


def test_overwrite_removes_own_samples_only(checkpoint, tmp_path):
    out = tmp_path / "s"
    run_sampling(checkpoint, out, composition=("NaCl",), n=5, steps=2, progress=False)
    (out / "notes.txt").write_text("mine")
    rows = run_sampling(checkpoint, out, composition=("KBr",), n=2, steps=2, progress=False,
                        overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["KBr_0.cif",
                                                     "KBr_1.cif", "manifest.csv", "notes.txt",
                                                     "sampling.json"]
    assert [r["name"] for r in read_manifest(out)] == [r["name"] for r in rows]


def test_interrupted_run_is_self_describing_and_resumes_to_the_same_result(checkpoint, tmp_path,
                                                                           monkeypatch):
    from gemsdiff_model import sample as sample_mod

    full = run_sampling(checkpoint, tmp_path / "full", composition=("NaCl", "KBr", "Si"), n=2,
                        steps=2, batch_atoms=4, progress=False)
    real, calls = sample_mod.generate, {"n": 0}

    def dies_on_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sample_mod, "generate", dies_on_third_batch)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_sampling(checkpoint, out, composition=("NaCl", "KBr", "Si"), n=2, steps=2,
                     batch_atoms=4, progress=False)
    listed = [r["name"] for r in read_manifest(out)]
    assert listed == ["NaCl_0", "NaCl_1", "KBr_0", "KBr_1"]        # two batches of 4 atoms
    assert sorted(p.stem for p in out.glob("*.cif")) == sorted(listed)
    settings = json.loads((out / "sampling.json").read_text())
    assert settings["complete"] is False and settings["planned"] == 6
    monkeypatch.setattr(sample_mod, "generate", real)
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(out),
                                  "--composition", "NaCl", "--composition", "KBr",
                                  "--composition", "Si", "-n", "2", "--steps", "2",
                                  "--batch-atoms", "4", "--no-progress", "--threads", "1"])
    assert r.exit_code == 1 and "--resume" in r.output
    rows = run_sampling(checkpoint, out, composition=("NaCl", "KBr", "Si"), n=2, steps=2,
                        batch_atoms=4, progress=False, resume=True)
    assert rows == full
    for row in full:
        name = f"{row['name']}.cif"
        assert (out / name).read_text() == (tmp_path / "full" / name).read_text()
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(out),
                                  "--composition", "NaCl", "--steps", "3", "--resume",
                                  "--no-progress"])
    assert r.exit_code == 1 and "settings differ" in r.output and "steps" in r.output


@pytest.mark.parametrize("args, message", [
    (["--composition", "Xx2"], "cannot parse composition"),
    (["--composition", "Li0.5O"], "not a positive integer"),
    (["--composition", "Li0O2"], "amount of Li is 0"),
    (["--composition", "Li30O"], "more than --max-atoms"),
    (["--system", "Li-Qq"], "not an element"),
    (["--composition", "LiO", "--steps", "0"], "--steps must be at least 1"),
    (["--composition", "LiO", "--restarts", "-1"], "--restarts must be 0 or more"),
    (["--composition", "LiO", "--restarts", "1", "--restart-tau", "0"],
     "--restart-tau must be in (0, 1]"),
    (["--composition", "LiO", "--system", "Li-O"], "exactly one of"),
    (["--composition", "LiO", "--overwrite", "--resume"], "exclude each other"),
    (["--composition", "LiO", "--resume"], "holds no earlier sampling run"),
    ([], "exactly one of"),
])
def test_error_messages_one_line(checkpoint, tmp_path, args, message):
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
                                  "--no-progress", *args])
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_bad_checkpoints_and_non_empty_out(checkpoint, tmp_path):
    def run(ckpt, out=tmp_path / "o"):
        return CliRunner().invoke(main, ["--checkpoint", str(ckpt), "--out", str(out),
                                         "--composition", "LiO", "--no-progress"])

    r = run(tmp_path / "nope.pt")
    assert r.exit_code == 1 and "does not exist" in r.output
    for content, message in [(b"", "is empty (0 bytes)"),
                             (b"not a checkpoint", "damaged or is not a GemsDiff checkpoint")]:
        bad = tmp_path / "bad.pt"
        bad.write_bytes(content)
        r = run(bad)
        assert r.exit_code == 1 and message in r.output and "weights_only" not in r.output
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.cif").write_text("keep")
    r = run(checkpoint, full)
    assert r.exit_code == 1 and "not empty" in r.output
    assert (full / "x.cif").read_text() == "keep"


def test_noise_levels():
    assert noise_levels(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    levels = noise_levels(100, 0.1)
    assert len(levels) == 11 and levels[0] == pytest.approx(0.1) and levels[-1] == 0.0


def test_on_step_sees_every_state_and_restarts_follow_the_chain(checkpoint):
    from gemsdiff_model.geometry import to_canonical_basis

    model, schedule, standardizer, _ = load_model(checkpoint)
    numbers = [[3, 26, 8, 8], [14]]
    seen = []
    lattices, fracs = generate(model, schedule, standardizer, numbers, steps=4,
                               generator=torch.Generator().manual_seed(0), restarts=2,
                               restart_tau=0.5,
                               on_step=lambda tau, lattice, frac: seen.append((tau, lattice, frac)))
    assert [t for t, _, _ in seen] == [0.75, 0.5, 0.25, 0.0] + [0.25, 0.0] * 2
    assert all(tuple(lat.shape) == (2, 3, 3) and tuple(f.shape) == (5, 3) for _, lat, f in seen)
    _, last_lattice, last_frac = seen[-1]
    reduced, frac = to_canonical_basis(last_lattice, last_frac, torch.tensor([0, 0, 0, 0, 1]))
    torch.testing.assert_close(reduced, lattices)
    torch.testing.assert_close(frac, torch.cat(fracs))
    plain = generate(model, schedule, standardizer, numbers, steps=4,
                     generator=torch.Generator().manual_seed(0))
    assert not torch.equal(plain[0], lattices)        # the restarts moved the sample


def test_the_command_samples_what_run_sampling_samples(checkpoint, tmp_path):
    # 520 x 4 atoms: more than one batch of the default size, whose seeds differ
    r = CliRunner().invoke(main, ["--checkpoint", str(checkpoint), "--out", str(tmp_path / "a"),
                                  "--composition", "LiFeO2", "-n", "520", *FAST])
    assert r.exit_code == 0, r.output
    run_sampling(checkpoint, tmp_path / "b", composition=["LiFeO2"], n=520, steps=4, threads=1,
                 progress=False)
    names = [row["name"] for row in read_manifest(tmp_path / "a")]
    assert names == [row["name"] for row in read_manifest(tmp_path / "b")] and len(names) == 520
    assert all((tmp_path / "a" / f"{n}.cif").read_text() == (tmp_path / "b" / f"{n}.cif").read_text()
               for n in names)
