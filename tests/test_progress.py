"""Progress display: a bar on a terminal, plain periodic lines in logs; notices on first fetch."""
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from crystal_metrics import download
from crystal_metrics import progress as P
from crystal_metrics import weights as W
from crystal_metrics.alignn import checkpoint as C
from crystal_metrics.cli import main
from support import MP20_DIR, ROOT

CLASSIC = ROOT / "tests" / "data" / "alignn" / "classic_random"


def test_plain_lines_when_not_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(P, "LINE_INTERVAL", 0.0)  # a line at every step
    with P.progress(4, "embedding (x)", "struct") as bar:
        for _ in range(4):
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert [line.rsplit(",", 1)[0] for line in lines] == [
        "embedding (x): 1/4 struct (25%)", "embedding (x): 2/4 struct (50%)",
        "embedding (x): 3/4 struct (75%)", "embedding (x): 4/4 struct (100%)",
        "embedding (x): 4/4 struct (100%)"]  # and a last one at the end
    assert all(line.endswith(" s") and "\r" not in line for line in lines)


def test_a_short_loop_prints_nothing_and_disabled_prints_nothing(capsys, monkeypatch):
    with P.progress(3, "fast", "struct") as bar:
        bar.update(3)
    monkeypatch.setattr(P, "LINE_INTERVAL", 0.0)
    with P.progress(3, "off", "struct", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(P, "interactive", lambda: True)
    with P.progress(2, "x") as bar:
        assert isinstance(bar, P.tqdm)


def test_a_command_writes_lines_not_a_bar_into_a_log(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(P, "LINE_INTERVAL", 0.0)
    result = CliRunner().invoke(main, ["fad", str(MP20_DIR), str(MP20_DIR), "--weights",
                                       str(CLASSIC), "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    assert "embedding (classic_random): 40/40 struct (100%)" in result.output


def _fake_pip(members: dict[str, bytes]):
    def run(cmd, **kwargs):
        dest = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(dest / "alignn-2023.1.10-py2.py3-none-any.whl", "w") as wheel:
            for name, data in members.items():
                wheel.writestr(f"alignn/ff/{name}", data)

        class Done:
            returncode, stdout, stderr = 0, "", ""
        return Done()
    return run


def test_the_first_fetch_says_what_it_fetches_and_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYSTAL_METRICS_CACHE", str(tmp_path / "cache"))
    files = {name: (CLASSIC / name).read_bytes() for name in ("best_model.pt", "config.json")}
    for name in files:  # stand-ins for the published hashes
        monkeypatch.setitem(C.ALIGNN_FF_MEMBERS, name, W.sha256_file(CLASSIC / name))
    monkeypatch.setattr(download.subprocess, "run", _fake_pip(files))
    dest = C.fetch_alignn_ff()
    assert capsys.readouterr().err.splitlines() == [
        ("fetching the ALIGNN-FF weights, once: alignn/ff/best_model.pt and config.json of the "
         f"alignn==2023.1.10 wheel (about 15 MB) from PyPI with 'pip download', into {dest}"),
        f"ALIGNN-FF weights ready in {dest} (sha256 checked)"]
    monkeypatch.setattr(download.subprocess, "run", lambda *a, **k: pytest.fail("fetched twice"))
    assert C.fetch_alignn_ff() == dest and capsys.readouterr().err == ""  # cached: silent
