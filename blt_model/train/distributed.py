"""Several processes under `torchrun --nproc-per-node N`: the process group (gloo on CPU, NCCL on
CUDA), this process's rank, and the few collective operations the training loop needs."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["all_reduce", "barrier", "broadcast_from_main", "setup_distributed", "world_info"]


def world_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str | torch.device | None = None) -> torch.device:
    """Join the torchrun process group if launched by torchrun (WORLD_SIZE > 1); pick the device.

    gloo on CPU, NCCL on CUDA. With one process nothing is initialised.
    """
    want = torch.device(device) if device is not None else None
    use_cuda = (want.type == "cuda") if want is not None else torch.cuda.is_available()
    if want is not None and want.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        index = local_rank if world > 1 else (want.index if want is not None and want.index is not None else 0)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return want if want is not None else torch.device("cpu")


def all_reduce(t: torch.Tensor, op: Any = None) -> torch.Tensor:
    """Sum (or `op`) `t` over every process, in place; `t` itself with one process."""
    if world_info()[1] > 1:
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


def broadcast_from_main(t: torch.Tensor) -> torch.Tensor:
    """Rank 0's value of `t` on every process, in place (decisions every rank must share)."""
    if world_info()[1] > 1:
        dist.broadcast(t, 0)
    return t


def barrier() -> None:
    """Wait for every process (nothing with one process)."""
    if world_info()[1] > 1:
        dist.barrier()
