import csv
import json

import pytest
import torch
from click.testing import CliRunner

from gemsdiff_model import trainer as trainer_mod
from gemsdiff_model.errors import GemsDiffError
from gemsdiff_model.train import main
from gemsdiff_model.trainer import run_training

ARGS = ["--hidden", "16", "--enc-layers", "1", "--dec-layers", "1", "--n-freq", "4",
        "--n-rbf", "4", "--batch-size", "3", "--no-progress", "--threads", "1"]


def test_cli_trains_writes_run_folder_and_counts_skips(data_dir, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["--data", str(data_dir), "--out", str(out), "--epochs", "2",
                                       "--val-fraction", "0.34", "--max-atoms", "3", *ARGS])
    assert result.exit_code == 0, result.output
    for name in ("config.json", "data_report.json", "metrics.csv", "train.log", "last.pt", "best.pt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "data_report.json").read_text())
    source = report["sources"][str(data_dir)]
    assert source["skipped_unreadable"] == 1            # broken.cif
    assert source["skipped_too_many_atoms"] == 1        # ErPt3 has 4 atoms
    assert report["train"] + report["validation"] == 5 and report["validation"] == 2
    assert "1 unreadable" in (out / "train.log").read_text()
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[-1]["val_loss"]) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["hidden"] == 16 and config["train"]["lr"] == 1e-3   # default kept
    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert ckpt["optimizer"] is None and ckpt["epoch"] in (1, 2)
    assert len(ckpt["standardizer"]["mean"]) == 6


def test_several_sources_and_held_out_slice_from_one(data_dir, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("mp-1487", "mp-631"):
        (extra / f"{name}.cif").write_text((data_dir / f"{name}.cif").read_text())
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["--data", str(data_dir), "--data", str(extra),
                                       "--val-source", str(extra), "--val-fraction", "0.5",
                                       "--out", str(out), "--epochs", "1", *ARGS])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "data_report.json").read_text())
    # 6 readable in data_dir + 2 in extra; one of extra's two held out
    assert (report["train"], report["validation"]) == (7, 1)
    assert report["validation_source"] == str(extra)
    r = CliRunner().invoke(main, ["--data", str(data_dir), "--val-source", str(extra),
                                  "--out", str(tmp_path / "o"), *ARGS])
    assert r.exit_code == 1 and "is not one of the --data paths" in r.output


def test_refuses_non_empty_run_folder(data_dir, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["--data", str(data_dir), "--out", str(tmp_path), *ARGS])
    assert result.exit_code == 1
    assert "not empty" in result.output and "Traceback" not in result.output
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_resume_is_exact(data_dir, tmp_path, tiny_config):
    straight = run_training(tiny_config(epochs=3), str(data_dir), tmp_path / "a", "cpu", progress=False)
    run_training(tiny_config(epochs=1), str(data_dir), tmp_path / "b", "cpu", progress=False)
    resumed = run_training(tiny_config(epochs=3), str(data_dir), tmp_path / "b", "cpu",
                           resume=True, progress=False)
    assert resumed["train_loss"] == straight["train_loss"]
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"] == 6
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    with open(tmp_path / "b" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_resume_may_change_learning_rate_only(data_dir, tmp_path, tiny_config):
    run_training(tiny_config(epochs=1), str(data_dir), tmp_path / "r", "cpu", progress=False)
    changed = tiny_config(epochs=2, lr=1e-4, batch_size=5)
    run_training(changed, str(data_dir), tmp_path / "r", "cpu", resume=True, progress=False)
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
    assert saved["lr"] == 1e-4 and saved["epochs"] == 2 and saved["batch_size"] == 3


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch, tiny_config):
    real = trainer_mod.diffusion.training_losses
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        losses = real(*args, **kwargs)
        if calls["n"] > 3:       # epoch 1 = 2 batches of 3 structures + 1 validation batch
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(trainer_mod.diffusion, "training_losses", flaky)
    with pytest.raises(GemsDiffError, match="loss is nan"):
        run_training(tiny_config(epochs=3, val_fraction=0.2), str(data_dir), tmp_path / "r",
                     "cpu", progress=False)
    ckpt = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert "loss is nan" in (tmp_path / "r" / "train.log").read_text()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes): the file is damaged"),
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "the file is damaged or is not a GemsDiff"),
])
def test_damaged_last_checkpoint_on_resume(data_dir, tmp_path, make, message):
    out = tmp_path / "run"
    out.mkdir()
    make(out / "last.pt")
    r = CliRunner().invoke(main, ["--data", str(data_dir), "--out", str(out), "--resume", *ARGS])
    assert r.exit_code == 1 and message in r.output
    assert "weights_only" not in r.output and "Traceback" not in r.output


def test_error_paths(data_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(main, ["--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"), *ARGS])
    assert r.exit_code == 1 and r.output.startswith("gemsdiff-train: error:") and "Traceback" not in r.output
    r = runner.invoke(main, ["--data", str(data_dir), "--out", str(tmp_path / "o2"), "--resume", *ARGS])
    assert r.exit_code == 1 and "no last.pt" in r.output
    r = runner.invoke(main, ["--data", str(data_dir), "--out", str(tmp_path / "o3"), "--max-atoms", "0", *ARGS])
    assert r.exit_code == 1 and "no usable structures" in r.output
    r = runner.invoke(main, ["--data", str(data_dir), "--out", str(tmp_path / "o4"),
                             "--device", "cuda", *ARGS])
    if not torch.cuda.is_available():
        assert r.exit_code == 1 and "device 'cuda'" in r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
