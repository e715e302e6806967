"""How a stage's model is wrapped for training, saved and resumed.

`TrainingStrategy` (the default): one process, or DDP under torchrun; the resume state is one
`state.pt` written by rank 0. `sharding.ShardedStrategy` (FSDP2, `blt finetune --shard`) keeps
the same interface with sharded parameters and a torch.distributed.checkpoint resume state.
The loop (loop.py) calls every method on every process; `write` says whether this process is
the one that writes files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..io.checkpoint import save_model
from ..nn.model import BLT
from .config import TrainingConfig
from .state import STATE_NAME, TrainState, resume_state, save_state
from .step import Optimization, make_optimizer, wrap_for_training

__all__ = ["TrainingStrategy", "checkpoint_blocks", "sharded_units"]


def sharded_units(model: BLT) -> tuple[list[nn.Module], list[nn.Module]]:
    """(transformer blocks, embedding modules) of the BLT's trained parts: the units FSDP shards
    one by one, and the blocks activation checkpointing recomputes."""
    blocks = [*model.encoder.stack.layers, *model.global_model.stack.layers, *model.decoder.stack.layers]
    return blocks, [model.encoder.embed, model.encoder.hash_embed]


def checkpoint_blocks(model: BLT) -> None:
    """Activation checkpointing: each block keeps only its input and recomputes the rest in the
    backward pass (about a third more compute for a fraction of the activation memory)."""
    for block in sharded_units(model)[0]:
        if getattr(block, "_recomputed", False):
            continue
        forward = block.forward

        def recomputed(*args: Any, _forward: Any = forward, **kwargs: Any) -> Any:
            if not torch.is_grad_enabled():
                return _forward(*args, **kwargs)
            return checkpoint(_forward, *args, use_reentrant=False, **kwargs)

        block.forward = recomputed
        block._recomputed = True


class TrainingStrategy:
    """One process or DDP, full weights on every process, `state.pt` for resuming."""

    # True when saving needs every process (gathering shards), so a Ctrl+C on one process
    # cannot save alone
    collective: bool = False

    def has_state(self, run_dir: Path) -> bool:
        return (run_dir / STATE_NAME).exists()

    def prepare(self, name: str, target: nn.Module, owner: BLT, cfg: TrainingConfig,
                resume_dir: Path | None) -> tuple[Optimization, TrainState]:
        """The optimizer over `target`'s trainable parameters, the resumed state (from
        `resume_dir` when given) and the wrapped model."""
        optimizer = make_optimizer(target, cfg)
        state = TrainState()
        if resume_dir is not None:
            state = resume_state(resume_dir / STATE_NAME, name, owner, optimizer)
        # DDP copies rank 0's (resumed) weights to every rank, so it wraps last
        return wrap_for_training(target, optimizer, cfg), state

    def save_model(self, owner: BLT, directory: Path, *, write: bool) -> None:
        if write:
            save_model(owner, directory)

    def save_state(self, run_dir: Path, name: str, state: TrainState, owner: BLT, opt: Optimization,
                   cfg: TrainingConfig, *, write: bool) -> None:
        if write:
            save_state(run_dir / STATE_NAME, name, state, owner, opt.optimizer, cfg)
