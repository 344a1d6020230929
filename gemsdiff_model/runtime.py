"""Where the model runs: device choice, CPU threads, the torch.distributed process group."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from crystal_metrics.device import resolve_device
from crystal_metrics.parallel import usable_cpus


def default_threads() -> int:
    """CPU threads for torch: half the usable CPUs (>= 1). Intra-op threads that compete with
    other processes on a loaded machine can make small graphs ~100x slower."""
    return max(1, usable_cpus() // 2)


def pick_device(name: str, local_rank: int | None = None) -> torch.device:
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N' (``crystal_metrics.device``:
    one-sentence DeviceError when unusable); under torchrun, 'cuda' means this process's GPU."""
    dev = resolve_device(None if name == "auto" else name)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank or 0)
    return dev


@dataclass
class Process:
    """This process's place in a (possibly single-process) torchrun group."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def start(device: str = "auto", threads: int | None = None) -> Process:
    """Set the CPU threads, pick the device and, under torchrun (WORLD_SIZE > 1), join the
    process group (NCCL on GPUs, gloo on CPUs)."""
    torch.set_num_threads(threads or default_threads())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ["LOCAL_RANK"]) if "LOCAL_RANK" in os.environ else None
    dev = pick_device(device, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
    return Process(dev, rank, world)


def all_reduce_max(value: float, process: Process) -> float:
    """Maximum of ``value`` over the group (the value itself in a single process)."""
    t = torch.tensor(float(value), device=process.device)
    if process.world > 1:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t)


def stop(process: Process) -> None:
    if process.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
