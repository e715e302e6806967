"""The entropy model: a small causal byte LM whose next-byte entropy places patch boundaries."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BLTConfig
from ..ids import OFFSET, VOCAB_SIZE
from .layers import RMSNorm
from .transformer import StackCache, TransformerStack

NEWLINE_ID = ord("\n") + OFFSET


def entropy_of_logits(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of softmax(logits) over the last dim (computed in float32)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def line_segments(ids: torch.Tensor) -> torch.Tensor:
    """Segment id per position: increments after every newline byte ([B, T] -> [B, T])."""
    nl = (ids == NEWLINE_ID).long()
    return torch.cumsum(nl, -1) - nl


class EntropyModel(nn.Module):
    """Byte embedding -> windowed causal transformer (context `entropy_context_size`) -> 260 logits."""

    def __init__(self, config: BLTConfig) -> None:
        super().__init__()
        c = config
        self.embed = nn.Embedding(VOCAB_SIZE, c.entropy_hidden_size)
        self.stack = TransformerStack(
            c.entropy_hidden_size, c.entropy_num_heads, c.entropy_intermediate_size, c.entropy_model_layers,
            kind=c.entropy_attention, window=c.entropy_context_size, rope_theta=c.effective_entropy_rope_theta,
            attn_dropout=c.attention_dropout, resid_dropout=c.resid_dropout, headwise_norm=c.headwise_norm,
            eps=c.norm_eps)
        self.norm = RMSNorm(c.entropy_hidden_size, c.norm_eps)
        self.head = nn.Linear(c.entropy_hidden_size, VOCAB_SIZE, bias=False)

    def forward(self, ids: torch.Tensor, reset_context: bool = False, cache: StackCache | None = None,
                seg: torch.Tensor | None = None) -> torch.Tensor:
        """ids: [B, T] -> logits [B, T, 260]; logits[:, t] predicts id t + 1.

        reset_context: attention stays within a line (restarts after each newline), so
        entropies never depend on earlier lines. With a cache, pass `seg` explicitly.
        """
        x = self.embed(ids)
        if reset_context and seg is None:
            seg = line_segments(ids)
        x = self.stack(x, seg=seg if reset_context else None, cache=cache)
        return self.head(self.norm(x))

    @torch.no_grad()
    def entropies(self, ids: torch.Tensor, reset_context: bool = False) -> torch.Tensor:
        """[B, T] -> next-byte entropies in nats [B, T]."""
        return entropy_of_logits(self.forward(ids, reset_context=reset_context))

    def new_cache(self, device: torch.device) -> StackCache:
        return self.stack.new_cache(device)
