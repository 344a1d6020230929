"""The torchmetrics metrics: the values of `crystal_metrics.fad`, `density_emd` and `validity`
on the same sets, the two batch layouts of `update()`, and the same values when the samples are
split over 2 processes (torch.distributed, gloo, CPU) as in one."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import crystal_metrics as cm
from crystal_metrics.scoring import FeatureSource, SmallSampleWarning
from support import MP20_DIR, ROOT, VAL_CSV

torchmetrics = pytest.importorskip("torchmetrics")
from crystal_metrics.torchmetrics import (
    DensityEMD,
    FrechetALIGNNDistance,
    KernelALIGNNDistance,
    Validity,
    structures_of,
)

WEIGHTS = ROOT / "tests" / "data" / "alignn" / "classic_random"
WORKER = ROOT / "tests" / "distributed" / "metrics_worker.py"


@pytest.fixture(scope="module")
def ref_stats(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.npz"
    FeatureSource(WEIGHTS, device="cpu", cache=False, progress=False)(VAL_CSV).save(path)
    return path


@pytest.fixture(scope="module")
def single(ref_stats):
    """The four metrics updated in one process with the worker's chunks, one thread."""
    sys.path.insert(0, str(WORKER.parent))
    try:
        import metrics_worker
    finally:
        sys.path.pop(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scores = metrics_worker.metrics(ref_stats, WEIGHTS)
        for chunk in metrics_worker.chunks(MP20_DIR):
            for metric in scores.values():
                metric.update(chunk)
        return {name: float(metric.compute()) for name, metric in scores.items()}
    finally:
        torch.set_num_threads(threads)


def test_the_metrics_equal_the_functions_on_the_same_sets(single, ref_stats):
    features = FeatureSource(WEIGHTS, device="cpu", cache=False, progress=False)
    with pytest.warns(SmallSampleWarning):
        whole = cm.fad(MP20_DIR, ref_stats, features)
    assert single["fad"] == pytest.approx(whole["fad"], rel=1e-6)
    assert single["kid"] == pytest.approx(whole["kid"], rel=1e-5)
    assert single["density_emd"] == pytest.approx(cm.density_emd(MP20_DIR, VAL_CSV), rel=1e-12)
    assert single["validity"] == cm.validity(MP20_DIR).fractions()["overall"] == 39 / 40


def test_split_over_two_processes_equals_one_process(single, ref_stats, tmp_path):
    out = tmp_path / "two.json"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node", "2", str(WORKER), str(MP20_DIR), str(ref_stats),
                    str(WEIGHTS), str(out)], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    two = json.loads(out.read_text())
    for name, value in single.items():
        assert two[name] == pytest.approx(value, rel=1e-10, abs=1e-12), name


def test_batch_tensors_are_the_structures_they_hold(examples):
    crystals = examples.crystals[:5]
    batch = {"lattice": torch.tensor(np.array([c.lattice for c in crystals])),
             "frac_coords": torch.tensor(np.concatenate([c.frac_coords for c in crystals])),
             "numbers": torch.tensor(np.concatenate([c.numbers for c in crystals])),
             "num_atoms": torch.tensor([c.n_atoms for c in crystals])}
    read = structures_of(**batch)
    assert read.names == [str(i) for i in range(5)] and not read.errors
    for a, b in zip(read.crystals, crystals):
        np.testing.assert_array_equal(a.lattice, b.lattice)
        np.testing.assert_array_equal(a.frac_coords, b.frac_coords)
        np.testing.assert_array_equal(a.numbers, b.numbers)
    batch["frac_coords"][0, 0] = float("nan")  # structure 0 becomes unusable
    validity = Validity()
    validity.update(**batch)
    assert validity.n.item() == 5 and validity.compute().item() <= 4 / 5
    assert [e.name for e in structures_of(**batch).errors] == ["0"]
    density = DensityEMD(VAL_CSV)
    density.update(**batch)
    assert density.compute().item() == pytest.approx(
        cm.density_emd(crystals[1:], VAL_CSV), rel=1e-12)


def test_a_batch_that_does_not_add_up_is_named():
    with pytest.raises(cm.CrystalMetricsError, match="batch of 2 lattices, 2 num_atoms"):
        structures_of(lattice=torch.eye(3).repeat(2, 1, 1), frac_coords=torch.zeros(3, 3),
                      numbers=torch.ones(3), num_atoms=torch.tensor([1, 1]))


def test_a_reference_of_another_extractor_is_refused(ref_stats):
    other = _of_another_extractor(ref_stats)
    with pytest.raises(cm.CrystalMetricsError, match="the reference was embedded by"):
        FrechetALIGNNDistance(other, FeatureSource(WEIGHTS, device="cpu", cache=False))
    with pytest.raises(cm.CrystalMetricsError, match="the reference was embedded by"):
        KernelALIGNNDistance(other, FeatureSource(WEIGHTS, device="cpu", cache=False))


def _of_another_extractor(path):
    from dataclasses import replace

    from crystal_metrics.features import ExtractorId, FeatureSet

    stats = FeatureSet.load(path)
    return replace(stats, extractor=ExtractorId("other", "0" * 64, stats.extractor.dim),
                   moments=None)
