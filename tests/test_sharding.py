"""Sharded statistics: `Shard` blocks, reading a block of a set, `crystal-metrics stats` under
torchrun (2 CPU processes, gloo) equal to one process, and `stats --merge`."""
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from crystal_metrics import read_structures
from crystal_metrics.cli import main
from crystal_metrics.distributed import Shard
from crystal_metrics.features import FeatureSet
from support import BROKEN_DIR, MP20_DIR, ROOT, VAL_CSV

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
# batches of 4 are the same batches in one process and in blocks of 16, 20 or 24 (float32 sums
# in a batch depend on its other structures)
EMBED = ["--weights", str(WEIGHTS), "--device", "cpu", "--no-cache", "--batch-size", "4"]


def test_the_blocks_of_all_ranks_are_the_set_in_order():
    for n in range(12):
        for size in range(1, 5):
            blocks = [list(range(n))[Shard(rank, size).block(n)] for rank in range(size)]
            assert [i for block in blocks for i in block] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1


@pytest.mark.parametrize("source", [VAL_CSV, BROKEN_DIR])
def test_the_blocks_read_are_the_set_read(source):
    whole = read_structures(source)
    parts = [read_structures(source, shard=Shard(rank, 3)) for rank in range(3)]
    assert [name for p in parts for name in p.names] == whole.names
    assert [e.name for p in parts for e in p.errors] == [e.name for e in whole.errors]
    for a, b in zip((c for p in parts for c in p.crystals), whole.crystals):
        np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
    with pytest.raises(ValueError, match="already read"):
        read_structures(whole, shard=Shard(0, 2))


def _same(a: FeatureSet, b: FeatureSet, tolerance=1e-10):
    assert a.n == b.n and a.extractor == b.extractor and a.kid_limit == b.kid_limit
    for x, y in zip(a.gaussian, b.gaussian):
        np.testing.assert_allclose(x, y, rtol=tolerance, atol=tolerance)
    for key in ("features", "energies", "densities", "n_elements", "keys"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_stats_under_torchrun_equals_one_process(tmp_path):
    one = CliRunner().invoke(main, ["stats", str(MP20_DIR), "-o", str(tmp_path / "one.npz"),
                                    "--kid-latents", "25", *EMBED])
    assert one.exit_code == 0, one.output
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "crystal_metrics", "stats", str(MP20_DIR), "-o", str(tmp_path / "two.npz"),
         "--kid-latents", "25", *EMBED],
        check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert two.returncode == 0, two.stderr
    assert "40 structures (KID latents of 25)" in two.stdout and "by 2 processes" in two.stdout
    _same(FeatureSet.load(tmp_path / "two.npz"), FeatureSet.load(tmp_path / "one.npz"))


def test_stats_merge_of_parts_is_the_file_of_the_whole(tmp_path):
    whole = read_structures(MP20_DIR)
    for i, rows in enumerate((slice(0, 16), slice(16, 40))):
        folder = tmp_path / f"part{i}"
        folder.mkdir()
        for name in whole.names[rows]:
            (folder / f"{name}.cif").write_bytes((MP20_DIR / f"{name}.cif").read_bytes())
        assert CliRunner().invoke(main, ["stats", str(folder), "-o", str(tmp_path / f"{i}.npz"),
                                         *EMBED]).exit_code == 0
    assert CliRunner().invoke(main, ["stats", str(MP20_DIR), "-o", str(tmp_path / "all.npz"),
                                     *EMBED]).exit_code == 0
    merged = CliRunner().invoke(main, ["stats", "--merge", str(tmp_path / "0.npz"),
                                       str(tmp_path / "1.npz"), "-o", str(tmp_path / "m.npz")])
    assert merged.exit_code == 0, merged.output
    _same(FeatureSet.load(tmp_path / "m.npz"), FeatureSet.load(tmp_path / "all.npz"))


def test_stats_usage_errors(tmp_path):
    a = tmp_path / "a.npz"
    for args, message in ((["--merge", str(a), "--device", "cpu"], "cannot be used with --merge"),
                          ([str(MP20_DIR), str(VAL_CSV)], "give one PATH")):
        result = CliRunner().invoke(main, ["stats", *args, "-o", str(tmp_path / "o.npz")])
        assert result.exit_code == 2 and message in result.output
