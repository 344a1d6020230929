"""One process of `torchrun --nproc_per_node N metrics_worker.py GEN REF_STATS WEIGHTS OUT.json`:
updates the four torchmetrics metrics with its block of GEN's chunks of 10 structures (rank 0
the first ones, as `Shard` blocks), computes them (synchronised over gloo) and, on rank 0, writes the values."""
import json
import sys

import torch
import torch.distributed as dist

from crystal_metrics import read_structures
from crystal_metrics.distributed import Shard
from crystal_metrics.scoring import FeatureSource
from crystal_metrics.torchmetrics import (
    DensityEMD,
    FrechetALIGNNDistance,
    KernelALIGNNDistance,
    Validity,
)

CHUNK = 10


def metrics(ref, weights):
    features = FeatureSource(weights, device="cpu", cache=False, progress=False)
    return {"fad": FrechetALIGNNDistance(ref, features), "kid": KernelALIGNNDistance(ref, features),
            "density_emd": DensityEMD(ref), "validity": Validity()}


def chunks(gen):
    structures = read_structures(gen).structures
    return [structures[i:i + CHUNK] for i in range(0, len(structures), CHUNK)]


def main(gen, ref, weights, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    scores = metrics(ref, weights)
    every = chunks(gen)
    for chunk in every[Shard(rank, size).block(len(every))]:
        for metric in scores.values():
            metric.update(chunk)
    values = {name: float(metric.compute()) for name, metric in scores.items()}
    if rank == 0:
        with open(out, "w") as handle:
            json.dump(values, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
