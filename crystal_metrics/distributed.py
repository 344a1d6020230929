"""One job over the processes of a torch.distributed run (`torchrun --nproc_per_node N`): the
part of a set each process takes, each process's device, and gathering what each made.

Processes talk over gloo (CPU), also on GPU nodes: they exchange only small results (sufficient
statistics, per-structure arrays), never model activations.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Process `rank` of `size`: it takes the `rank`-th of `size` contiguous blocks of a set, so
    that the blocks of ranks 0, 1, ... joined in order are the set in its order."""

    rank: int
    size: int

    def block(self, n: int) -> slice:
        """Positions of this process's block among n items."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    def gather(self, obj) -> list:
        """`obj` of every process, in rank order, on every process (a collective: every
        process must call it)."""
        import torch.distributed as dist

        gathered = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered


def launched() -> bool:
    """Whether this process was started as one of several by torchrun (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start() -> Shard:
    """This process's `Shard`, joining the process group torchrun describes (environment
    variables RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) unless already joined."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return Shard(dist.get_rank(), dist.get_world_size())


def local_device(device=None):
    """The device of this process on a multi-GPU node: `cuda:LOCAL_RANK` when `device` is None
    or 'cuda' and a GPU is visible, else `device` as given."""
    import torch

    if device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"
    return device
