"""How much memory one process needs to fine-tune a BLT (`blt info --train`), before starting.

    weights      every parameter in fp32 (the optimizer updates fp32 master weights; with FSDP
                 and bf16 the bf16 copies of the gathered units count under `copies`)
    gradients    fp32, for the trained parameters (all but the frozen entropy model)
    optimizer    AdamW's two fp32 moments per trained parameter
    activations  what autograd keeps from the forward for the backward, at the given batch and
                 sequence length (see `activation_floats_per_byte`)
    copies       weights copied for the computation: with FSDP the unsharded parameters of the
                 root and of the units being computed (the current one and the prefetched next
                 one) in the compute dtype; without FSDP in bf16, autocast's bf16 casts of the
                 trained weights (kept for the step)

With `sharded` (FSDP2, sharding.py) weights, gradients and optimizer states of everything but the
entropy model (left out, replicated) are divided by the world size; activations are per process
and do not shrink. Without sharding (one process or DDP) every process holds everything.

The activation formula counts the tensors the backward reads, per byte position, in floats:
a transformer block keeps about 12 * dim + 4 * ffn (norm inputs and outputs, q/k/v, attention
output and log-sum-exp with SDPA's flash kernels, the SwiGLU's gate, up and product), a
cross-attention about 8 * dim, the embeddings, pooling and head about 12 * dim, and the loss the
log-probabilities (260). Global blocks run once per patch, so they count 1 / mean patch size per
byte. Activation checkpointing keeps only each block's input (dim) plus one block's activations
being recomputed. Measured on the shipped model (tests/blt_model/train/test_memory.py) the total
is within a few percent of the saved tensors and 10-15% above the peak of live tensor bytes
(activations are freed during the backward while gradients appear), i.e. on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import BLTConfig
from ..ids import VOCAB_SIZE
from ..nn.model import BLT
from .strategy import sharded_units

__all__ = ["TrainingMemory", "activation_floats_per_byte", "training_memory"]

_FP32 = 4


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per process for one training step (see the module docstring)."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    copies: int
    world_size: int
    sharded: bool

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.copies

    def as_dict(self) -> dict[str, int]:
        return {"weights": self.weights, "gradients": self.gradients, "optimizer": self.optimizer,
                "activations": self.activations, "copies": self.copies, "total": self.total}


def _block(dim: int, ffn: int) -> int:
    return 12 * dim + 4 * ffn


def activation_floats_per_byte(config: BLTConfig, checkpointing: bool = False,
                               mean_patch_size: float | None = None) -> float:
    """Floats autograd keeps per byte position of a training sequence (module docstring)."""
    c = config
    patch = mean_patch_size or c.target_mean_patch_size
    d, n_cross = c.hidden_size, (c.decoder_layers if c.cross_attn_all_layers_decoder else 1)
    local = _block(d, c.intermediate_size) * c.encoder_layers + _block(d, c.effective_decoder_intermediate_size) * c.decoder_layers
    glob = _block(c.effective_global_hidden_size, c.effective_global_intermediate_size) / patch
    if checkpointing:  # block inputs only, plus the largest block recomputed during the backward
        kept = d * (c.encoder_layers + c.decoder_layers) + c.effective_global_hidden_size * c.global_layers / patch
        blocks = kept + max(_block(d, max(c.intermediate_size, c.effective_decoder_intermediate_size)), glob)
    else:
        blocks = local + glob * c.global_layers
    return blocks + 8 * d * (n_cross + 1) + 12 * d + VOCAB_SIZE


def _gathered(model: BLT, world: int, compute_bytes: int) -> int:
    """FSDP: root parameters plus the two largest units, unsharded, in the compute dtype."""
    blocks, embeddings = sharded_units(model)
    units = sorted((sum(p.numel() for p in u.parameters()) for u in blocks + embeddings), reverse=True)
    in_units = sum(units)
    root = model.num_parameters() - in_units - sum(p.numel() for p in model.entropy_model.parameters())
    return (root + sum(units[:2])) * compute_bytes if world > 1 else 0


def training_memory(model: BLT, *, seq_len: int, batch_size: int, world_size: int = 1, sharded: bool = False,
                    bf16: bool = False, activation_checkpointing: bool = False,
                    train_entropy_model: bool = False) -> TrainingMemory:
    """The memory one process needs to fine-tune `model` (a real or meta-device BLT)."""
    if seq_len < 2 or batch_size < 1 or world_size < 1:
        raise ValueError(f"seq_len >= 2, batch_size >= 1 and world_size >= 1 needed, got {seq_len}, "
                         f"{batch_size}, {world_size}")
    total = model.num_parameters()
    entropy = sum(p.numel() for p in model.entropy_model.parameters())
    trained = total if train_entropy_model else total - entropy
    split = world_size if sharded else 1
    shardable = total - entropy  # the entropy model is never sharded
    weights = (shardable // split + entropy) * _FP32
    trained_here = (trained - (entropy if train_entropy_model else 0)) // split + (entropy if train_entropy_model else 0)
    act_bytes = 2 if bf16 else _FP32
    floats = activation_floats_per_byte(model.config, activation_checkpointing)
    activations = int(floats * seq_len * batch_size * act_bytes)
    if sharded:
        copies = _gathered(model, world_size, 2 if bf16 else _FP32)
    else:
        copies = 2 * trained if bf16 else 0
    return TrainingMemory(weights, trained_here * _FP32, 2 * trained_here * _FP32, activations, copies,
                          world_size, sharded)
