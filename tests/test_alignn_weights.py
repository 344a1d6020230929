"""Checkpoint resolution, caching and every error path of crystal_metrics.alignn.checkpoint and
crystal_metrics.download."""

import hashlib
import http.server
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from crystal_metrics import download
from crystal_metrics import weights as W
from crystal_metrics.alignn import checkpoint as C
from crystal_metrics.alignn import load_extractor
from crystal_metrics.errors import CrystalMetricsError

DATA = Path(__file__).parent / "data" / "alignn"
CLASSIC = DATA / "classic_random"


pytestmark = pytest.mark.usefixtures("tmp_cache")


def _zip_folder(folder, dest, inner="model_dir", checkpoint_name="best_model.pt", wrap=False):
    with zipfile.ZipFile(dest, "w") as z:
        z.write(folder / "config.json", f"{inner}/config.json")
        if wrap:  # legacy training checkpoint {"model": state_dict, ...}
            sd = torch.load(folder / "best_model.pt", weights_only=True)
            tmp = dest.with_suffix(".pt")
            torch.save({"model": sd, "epoch": 3}, tmp)
            z.write(tmp, f"{inner}/{checkpoint_name}")
        else:
            z.write(folder / "best_model.pt", f"{inner}/{checkpoint_name}")
    return dest


def test_folder_and_zip_give_same_extractor(tmp_path):
    a = load_extractor(CLASSIC, device="cpu")
    b = load_extractor(_zip_folder(CLASSIC, tmp_path / "m.zip"), device="cpu")
    c = load_extractor(
        _zip_folder(CLASSIC, tmp_path / "c.zip", checkpoint_name="checkpoint_300.pt", wrap=True), device="cpu"
    )
    assert a.sha256 == b.sha256 == W.sha256_file(CLASSIC / "best_model.pt")
    assert a.id == f"classic_random-{a.sha256[:12]}-32" and a.dim == 32 and a.name == "classic_random"
    for name, x, y in zip(("a", "b"), a.model.state_dict().values(), c.model.state_dict().values()):
        assert torch.equal(x, y)


def test_key_mismatch_is_an_error(tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(CLASSIC, folder)
    sd = torch.load(folder / "best_model.pt", weights_only=True)
    sd.pop("fc.bias")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, folder / "best_model.pt")
    with pytest.raises(W.WeightsError, match="does not match its config.json"):
        load_extractor(folder, device="cpu")


def _classic_with_config(tmp_path, edit):
    """A copy of the random classic checkpoint whose config.json is changed by `edit(cfg)`."""
    folder = tmp_path / "edited"
    shutil.copytree(CLASSIC, folder)
    cfg = json.loads((folder / "config.json").read_text())
    edit(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_config_shape_mismatch_is_an_error(tmp_path):
    folder = _classic_with_config(tmp_path, lambda cfg: cfg["model"].update(hidden_features=48))
    with pytest.raises(CrystalMetricsError, match="does not match"):
        load_extractor(folder, device="cpu")


def test_missing_paths(tmp_path):
    with pytest.raises(W.WeightsError, match="does not exist"):
        load_extractor(tmp_path / "nope", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(W.WeightsError, match="config.json"):
        load_extractor(tmp_path / "empty", device="cpu")
    only_cfg = tmp_path / "only_cfg"
    only_cfg.mkdir()
    shutil.copy(CLASSIC / "config.json", only_cfg)
    with pytest.raises(W.WeightsError, match="best_model.pt"):
        load_extractor(only_cfg, device="cpu")


def test_truncated_zip(tmp_path):
    z = _zip_folder(CLASSIC, tmp_path / "m.zip")
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(W.WeightsError, match="not a readable checkpoint zip"):
        load_extractor(z, device="cpu")


def test_corrupt_weights_file(tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(CLASSIC, folder)
    data = (folder / "best_model.pt").read_bytes()
    (folder / "best_model.pt").write_bytes(data[:1000])
    with pytest.raises(W.WeightsError, match="best_model.pt is damaged: it is truncated"):
        load_extractor(folder, device="cpu")


def test_unsupported_config(tmp_path):
    folder = _classic_with_config(tmp_path, lambda cfg: cfg.update(neighbor_strategy="radius_graph"))
    with pytest.raises(CrystalMetricsError, match="neighbor_strategy"):
        load_extractor(folder, device="cpu")


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    lie_length = False

    def do_GET(self):
        self.send_response(200)
        n = len(self.payload) + (1000 if self.lie_length else 0)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_url_download_with_hash_and_cache(tmp_path, server):
    z = _zip_folder(CLASSIC, tmp_path / "m.zip")
    _Handler.payload, _Handler.lie_length = z.read_bytes(), False
    url = f"http://127.0.0.1:{server.server_port}/classic_random.zip"
    sha = hashlib.sha256(_Handler.payload).hexdigest()
    ext = load_extractor(url, device="cpu", sha256=sha)
    assert ext.name == "classic_random" and ext.sha256 == W.sha256_file(CLASSIC / "best_model.pt")
    _Handler.payload = b"changed"  # second call is served from the cache
    assert load_extractor(url, device="cpu", sha256=sha).sha256 == ext.sha256


def test_url_bad_hash(tmp_path, server):
    _Handler.payload, _Handler.lie_length = _zip_folder(CLASSIC, tmp_path / "m.zip").read_bytes(), False
    url = f"http://127.0.0.1:{server.server_port}/m.zip"
    with pytest.raises(W.WeightsError, match="sha256"):
        load_extractor(url, device="cpu", sha256="0" * 64)
    assert not list((tmp_path / "cache" / "downloads").glob("*m.zip*"))


def test_url_truncated(tmp_path, server):
    _Handler.payload, _Handler.lie_length = b"x" * 5000, True
    url = f"http://127.0.0.1:{server.server_port}/t.zip"
    with pytest.raises(W.WeightsError, match="truncated|Could not download"):
        download.download_url(url, progress=False)


def test_url_unreachable(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(W.WeightsError, match="Could not download"):
        load_extractor(f"http://127.0.0.1:{port}/m.zip", device="cpu")


def test_alignn_ff_fetch_without_pip_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(download.sys, "executable", "/nonexistent/python")
    with pytest.raises(W.WeightsError, match="ALIGNN-FF"):
        C.fetch_alignn_ff()


def test_alignn_ff_bad_hash_in_wheel(tmp_path, monkeypatch):
    """A wheel whose best_model.pt differs from the pinned hash is refused."""
    def fake_run(cmd, **kw):
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "alignn-2023.1.10-py2.py3-none-any.whl", "w") as z:
            z.writestr("alignn/ff/best_model.pt", b"not the weights")
            z.writestr("alignn/ff/config.json", b"{}")
        class P:
            returncode, stdout, stderr = 0, "", ""
        return P()

    monkeypatch.setattr(download.subprocess, "run", fake_run)
    with pytest.raises(W.WeightsError, match="refusing"):
        C.fetch_alignn_ff()


def test_legacy_pickled_checkpoint_loads_locally_with_warning(tmp_path):
    import argparse

    folder = tmp_path / "legacy"
    folder.mkdir()
    shutil.copy(CLASSIC / "config.json", folder)
    sd = torch.load(CLASSIC / "best_model.pt", weights_only=True)
    torch.save({"model": sd, "args": argparse.Namespace(epochs=3)}, folder / "checkpoint_7.pt")
    with pytest.warns(UserWarning, match="not a plain tensor file"):
        ext = load_extractor(folder, device="cpu")
    assert ext.sha256 == W.sha256_file(folder / "checkpoint_7.pt")


def test_bad_structures_raise_structure_error():
    from pymatgen.core import Lattice, Structure

    from crystal_metrics.errors import StructureError

    ext = load_extractor(CLASSIC, device="cpu")
    disordered = Structure(Lattice.cubic(4.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(StructureError, match="partial occupancies"):
        ext.embed([disordered])


@pytest.mark.parametrize("content, problem", [
    (b"", "it is empty [(]0 bytes[)]"),
    (bytes(range(7, 256)) * 20, "it is not a PyTorch checkpoint"),
    (b"PK\x03\x04" + bytes(range(256)) * 4, "it is truncated"),
])
@pytest.mark.parametrize("how", ["folder", "zip"])
def test_a_damaged_checkpoint_is_named_and_no_unsafe_load_is_suggested(tmp_path, content, problem,
                                                                        how):
    from click.testing import CliRunner

    from crystal_metrics.cli import main

    folder = tmp_path / "damaged"
    shutil.copytree(CLASSIC, folder)
    (folder / "best_model.pt").write_bytes(content)
    weights = folder if how == "folder" else _zip_folder(folder, tmp_path / "damaged.zip")
    with pytest.raises(W.WeightsError, match=f"best_model.pt is damaged: {problem}"):
        load_extractor(weights, device="cpu")
    result = CliRunner().invoke(main, ["fad", str(DATA.parents[2] / "examples" / "mp20_test"),
                                       str(DATA.parents[2] / "examples" / "mp20_val_sample.csv"),
                                       "--weights", str(weights), "--no-cache"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is damaged" in result.output and "weights_only" not in result.output
    assert "copy or download it again" in result.output


def test_a_pickled_checkpoint_from_an_unpinned_source_is_refused_without_unsafe_advice(tmp_path):
    import argparse

    sd = torch.load(CLASSIC / "best_model.pt", weights_only=True)
    torch.save({"model": sd, "args": argparse.Namespace(epochs=3)}, tmp_path / "best_model.pt")
    ckpt = C.Checkpoint("x", {}, tmp_path / "best_model.pt", "0" * 64, allow_pickle=False)
    with pytest.raises(W.WeightsError) as caught:
        C.load_state_dict(ckpt)
    assert "holds Python objects besides tensors" in str(caught.value)
    assert "weights_only" not in str(caught.value)


def test_cuda_on_a_cpu_only_torch_is_one_sentence(monkeypatch):
    from click.testing import CliRunner

    from crystal_metrics.cli import main
    from crystal_metrics.device import DeviceError, resolve_device

    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)  # as in a CPU build
    with pytest.raises(DeviceError, match="is built without CUDA; use cpu"):
        load_extractor(CLASSIC, device="cuda")
    result = CliRunner().invoke(main, ["fad", "no_such_gen", "no_such_ref", "--device", "cuda"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output == (f"Error: --device: device 'cuda': this torch ({torch.__version__}) "
                             "is built without CUDA; use cpu, or install a CUDA build of torch\n")
    with pytest.raises(DeviceError, match="unknown torch device 'gpu'"):
        resolve_device("gpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_the_same_weights_from_another_source_are_accepted_with_a_statistics_file(tmp_path):
    from click.testing import CliRunner

    from crystal_metrics.cli import main

    examples = DATA.parents[2] / "examples"
    run = CliRunner().invoke
    result = run(main, ["stats", str(examples / "mp20_val_sample.csv"), "-o",
                        str(tmp_path / "ref.npz"), "--weights", str(CLASSIC)])
    assert result.exit_code == 0, result.output
    copy = _zip_folder(CLASSIC, tmp_path / "my-copy-of-the-weights.zip")  # another name
    result = run(main, ["fad", str(examples / "mp20_test"), str(tmp_path / "ref.npz"),
                        "--weights", str(copy)])
    assert result.exit_code == 0 and "different extractors" not in result.output


def test_the_alignn_ff_files_are_named_alignn_ff_wherever_they_come_from(tmp_path, monkeypatch):
    # stand-ins for the published hashes: the small test checkpoint plays ALIGNN-FF
    monkeypatch.setitem(C.ALIGNN_FF_MEMBERS, "best_model.pt", W.sha256_file(CLASSIC / "best_model.pt"))
    monkeypatch.setitem(C.ALIGNN_FF_MEMBERS, "config.json", W.sha256_file(CLASSIC / "config.json"))
    folder = tmp_path / "copied"
    shutil.copytree(CLASSIC, folder)
    assert C.resolve_checkpoint(folder).name == C.ALIGNN_FF_NAME
    assert C.resolve_checkpoint(_zip_folder(folder, tmp_path / "ff.zip")).name == C.ALIGNN_FF_NAME
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "cutoff": 6.0}))  # not the same model
    assert C.resolve_checkpoint(folder).name == "copied"
