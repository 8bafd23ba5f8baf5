"""Data-parallel training under ``torchrun``: which process this is, and the collectives the
training loop needs (summed confusion matrices, averaged batch-norm statistics).

Without ``WORLD_SIZE`` > 1 in the environment everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False
    device: torch.device = torch.device("cpu")    # where collectives run (NCCL needs CUDA)

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    comm = torch.device("cuda", local) if device.type == "cuda" else torch.device("cpu")
    return Dist(rank, world, local, owns, comm)


def all_sum(array: np.ndarray, d: Dist) -> np.ndarray:
    if d.world == 1:
        return array
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64)).to(d.device)
    dist.all_reduce(t)
    return t.cpu().numpy()


def average_buffers(model: nn.Module, d: Dist) -> None:
    """Average float buffers (batch-norm running statistics) over processes, so every process
    validates, and rank 0 saves, statistics of all the data rather than of its own shard."""
    if d.world == 1:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf)
            buf.div_(d.world)
