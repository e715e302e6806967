"""Sharded training (`blt finetune --shard` under torchrun): FSDP2 and torch.distributed.checkpoint.

`shard_model` applies `torch.distributed.fsdp.fully_shard` to every transformer block of the
local encoder, the global model and the local decoder, to the byte and hash n-gram embedding
tables, and last to the whole BLT (the projections, norms and head that remain). The entropy
model is left out (`ignored_params`): it is frozen, small, and the patcher calls it outside any
module's forward, where a sharded parameter could not be read. Each process then holds 1/N of
the weights, gradients and AdamW states. `mixed_precision` computes in bf16 with fp32 master
weights and fp32 gradient reduction; `activation_checkpointing` recomputes each block's
activations in the backward pass instead of keeping them.

`ShardedStrategy` plugs this into the training loop (strategy.py): best/ and last/ are gathered
into one ordinary model directory (one safetensors file) written by rank 0; the resume state is
a torch.distributed.checkpoint directory (`sharded/step-N.K/`, every process writing its shards,
which loads on any number of processes) named by `state-sharded.json`, the file written last
(atomically), so a kill mid-save resumes from the previous state. The run directory must be on a
file system every process sees. With one process nothing is sharded; the state format is the same.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from ..guards import read_regular_file
from ..io.checkpoint import save_model
from ..io.files import atomic_write_text
from ..nn.model import BLT
from .config import TrainingConfig
from .distributed import barrier, world_info
from .errors import RunFileError
from .state import TrainState
from .step import Optimization, make_optimizer
from .strategy import TrainingStrategy, checkpoint_blocks, sharded_units

__all__ = ["POINTER_NAME", "SHARDS_DIR", "ShardedStrategy", "shard_model"]

POINTER_NAME = "state-sharded.json"
SHARDS_DIR = "sharded"
_FORMAT = 1


def shard_model(model: BLT, *, mixed_precision: bool = False, activation_checkpointing: bool = False) -> None:
    """FSDP2 in place (see the module docstring); with one process only the checkpointing."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    blocks, embeddings = sharded_units(model)
    if activation_checkpointing:
        checkpoint_blocks(model)
    world = world_info()[1]
    if world == 1:
        return
    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (world,))
    policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
              if mixed_precision else MixedPrecisionPolicy())
    for unit in [*blocks, *embeddings]:
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy, ignored_params=set(model.entropy_model.parameters()))


class _FullWeights:
    """What `save_model` reads from a model: its config and a (gathered) state dict."""

    def __init__(self, config: Any, state: dict[str, torch.Tensor]) -> None:
        self.config, self._state = config, state

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


def _no_dist() -> bool:
    return not (dist.is_available() and dist.is_initialized())


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    # DCP warns that it assumes one process even when told so (no_dist=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


class ShardedStrategy(TrainingStrategy):
    """FSDP2 weights, gathered model directories, torch.distributed.checkpoint resume state."""

    def __init__(self, *, mixed_precision: bool = False, activation_checkpointing: bool = False) -> None:
        self.mixed_precision = mixed_precision
        self.activation_checkpointing = activation_checkpointing
        self._saves = 0

    @property
    def collective(self) -> bool:  # type: ignore[override]
        return world_info()[1] > 1

    def has_state(self, run_dir: Path) -> bool:
        return (run_dir / POINTER_NAME).exists()

    def prepare(self, name: str, target: nn.Module, owner: BLT, cfg: TrainingConfig,
                resume_dir: Path | None) -> tuple[Optimization, TrainState]:
        if target is not owner:
            raise ValueError("sharded training trains the whole BLT (its entropy model frozen)")
        if any(p.requires_grad for p in owner.entropy_model.parameters()):
            raise ValueError("sharded training keeps the entropy model frozen; do not train it with --shard")
        shard_model(owner, mixed_precision=self.mixed_precision,
                    activation_checkpointing=self.activation_checkpointing)
        optimizer = make_optimizer(owner, cfg)  # over the sharded parameters
        state = self._resume(resume_dir, name, owner, optimizer) if resume_dir is not None else TrainState()
        world = world_info()[1]
        # one process: nothing shards, so bf16 is autocast as in the plain path
        amp = torch.bfloat16 if self.mixed_precision and world == 1 else None
        params = [p for p in owner.parameters() if p.requires_grad]
        device = next(owner.parameters()).device
        return Optimization(owner, owner, optimizer, params, device, amp, world, cfg), state

    def save_model(self, owner: BLT, directory: Path, *, write: bool) -> None:
        if world_info()[1] == 1:
            return super().save_model(owner, directory, write=write)
        full = get_model_state_dict(owner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if write:  # rank 0 holds the gathered weights
            save_model(_FullWeights(owner.config, full), directory)  # type: ignore[arg-type]
        barrier()

    def _free_name(self, run_dir: Path, step: int) -> str:
        # a new directory per save: the one state-sharded.json names is never overwritten
        while True:
            self._saves += 1
            rel = f"{SHARDS_DIR}/step-{step:08d}.{self._saves}"
            if not (run_dir / rel).exists():
                return rel

    def save_state(self, run_dir: Path, name: str, state: TrainState, owner: BLT, opt: Optimization,
                   cfg: TrainingConfig, *, write: bool) -> None:
        rel = self._free_name(run_dir, state.step)
        barrier()  # every process chose its name before any writes
        model_sd, optim_sd = get_state_dict(owner, opt.optimizer)
        with _quiet_single_process():
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=run_dir / rel, no_dist=_no_dist())
        barrier()
        if write:
            pointer = {"format": _FORMAT, "stage": name, "checkpoint": rel, **state.to_dict(),
                       "config": cfg.to_dict()}
            atomic_write_text(run_dir / POINTER_NAME, json.dumps(pointer, indent=1) + "\n")
            for old in (run_dir / SHARDS_DIR).iterdir():
                if old.name != Path(rel).name:
                    shutil.rmtree(old, ignore_errors=True)
        barrier()

    def _resume(self, run_dir: Path, name: str, owner: BLT, optimizer: torch.optim.Optimizer) -> TrainState:
        path = run_dir / POINTER_NAME
        try:
            meta = json.loads(read_regular_file(path, 1 << 20).decode("utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise RunFileError(f"{path}: unreadable sharded training state ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("stage") != name:
            raise RunFileError(f"{path}: not a sharded {name} state of this version")
        model_sd, optim_sd = get_state_dict(owner, optimizer)
        try:
            with _quiet_single_process():
                dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=run_dir / str(meta["checkpoint"]),
                         no_dist=_no_dist())
        except Exception as e:  # DCP raises several kinds (missing files, mismatched shapes)
            raise RunFileError(f"{run_dir / str(meta['checkpoint'])}: cannot load the sharded state "
                               f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        set_state_dict(owner, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)
        return TrainState.from_dict(meta)
