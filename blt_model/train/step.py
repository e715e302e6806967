"""One optimizer step's gradients: AdamW over the trainable parameters, the model wrapped for
several processes (DDP) and bf16 autocast, gradient accumulation over micro-batches, and the
CUDA out-of-memory back-off (halve the micro-batch, keep the effective batch)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..ids import BOE_ID
from ..nn.model import lm_loss
from .config import TrainingConfig
from .distributed import all_reduce, world_info
from .errors import TrainingError
from .examples import split_batch
from .reporting import TrainingReporter
from .state import TrainState

__all__ = ["Optimization", "accumulate_gradients", "gradient_norm", "make_optimizer", "wrap_for_training"]


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # no weight decay on norms, biases and gains (1-D tensors)
    decay = [p for p in module.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in module.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def make_optimizer(target: nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(_param_groups(target, cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.betas,
                             eps=1e-8)


@dataclass
class Optimization:
    """What a step needs: the model as trained (DDP-wrapped under torchrun), its forward
    (compiled or not), the optimizer, the trainable parameters and the autocast dtype."""

    model: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    device: torch.device
    amp_dtype: torch.dtype | None
    world: int
    cfg: TrainingConfig


def wrap_for_training(target: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainingConfig) -> Optimization:
    """DDP (several processes), torch.compile (cfg.compile, CUDA) and the precision, around `target`
    whose weights are final (after a resume: DDP copies rank 0's weights to every rank)."""
    device = next(target.parameters()).device
    world = world_info()[1]
    model: nn.Module = target
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(target, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=cfg.ddp_find_unused_parameters)
    forward = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"
                                           and torch.cuda.is_bf16_supported())
    params = [p for p in target.parameters() if p.requires_grad]
    return Optimization(model, forward, optimizer, params, device, torch.bfloat16 if use_bf16 else None, world, cfg)


def _backward(opt: Optimization, batches: list[torch.Tensor], micro_bs: int, n_global: int) -> torch.Tensor:
    """Gradients of the mean loss over every target of the global batch -> the summed loss."""
    opt.optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), dtype=torch.float64, device=opt.device)
    chunks = [c for b in batches for c in (b.split(micro_bs) if micro_bs else [b])]
    for j, chunk in enumerate(chunks):
        ids, scored = split_batch(chunk.to(opt.device, non_blocking=True))
        last = j == len(chunks) - 1
        # DDP skips the all-reduce until the last micro-batch; FSDP (no no_sync) reduces each time
        defer = not last and opt.world > 1 and hasattr(opt.model, "no_sync")
        with opt.model.no_sync() if defer else contextlib.nullcontext():
            with torch.autocast(opt.device.type, dtype=opt.amp_dtype, enabled=opt.amp_dtype is not None):
                logits = opt.forward(ids)
            part, _ = lm_loss(logits, scored, reduction="sum")
            # DDP averages gradients over ranks; scaling by world / n_global makes the
            # result the gradient of the mean loss over every target of the global batch
            (part * (opt.world / n_global)).backward()
        loss_sum += part.detach().double()
    return loss_sum


def _halve_micro_batch(opt: Optimization, batches: list[torch.Tensor], state: TrainState,
                       reporter: TrainingReporter) -> None:
    current = state.micro_batch_size or max(b.shape[0] for b in batches)
    cfg = opt.cfg
    if opt.world > 1 or current <= 1:
        raise TrainingError(
            "CUDA out of memory" + (" at micro-batch 1" if current <= 1 else " in a multi-process run")
            + f"; lower --batch-size or --seq-len (now {cfg.batch_size} x {cfg.max_sequence_length})"
        ) from None
    opt.optimizer.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
    state.micro_batch_size = max(1, current // 2)
    reporter.on_note(f"CUDA out of memory: micro-batch halved to {state.micro_batch_size} "
                     f"(gradient accumulation keeps the effective batch)", warning=True)


def accumulate_gradients(opt: Optimization, batches: list[torch.Tensor], state: TrainState,
                         reporter: TrainingReporter) -> tuple[float, int]:
    """Forward and backward over `batches` (one optimizer step's worth) -> (mean loss per
    predicted byte over every process, number of predicted bytes); (nan, 0) for no targets.
    On CUDA out-of-memory the micro-batch is halved (kept in `state`) and the step retried."""
    n_local = sum(int((split_batch(b)[1][:, 1:] != BOE_ID).sum()) for b in batches)
    n_global = int(all_reduce(torch.tensor([n_local], dtype=torch.float64, device=opt.device))[0])
    if n_global == 0:
        return math.nan, 0
    while True:
        try:
            loss_sum = _backward(opt, batches, state.micro_batch_size, n_global)
            break
        except torch.cuda.OutOfMemoryError:
            _halve_micro_batch(opt, batches, state, reporter)
    return float(all_reduce(loss_sum)) / n_global, n_global


def gradient_norm(opt: Optimization) -> float:
    """The global gradient norm, clipped to cfg.max_grad_norm when that is > 0."""
    if opt.cfg.max_grad_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(opt.params, opt.cfg.max_grad_norm)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # a DTensor under FSDP
    return float(torch.sqrt(sum((p.grad.float() ** 2).sum() for p in opt.params if p.grad is not None)))
