"""Global transformer: causal self-attention over patch vectors, run once per patch."""

from __future__ import annotations

import torch
from torch import nn

from ..config import BLTConfig
from .layers import RMSNorm
from .transformer import StackCache, TransformerStack


class GlobalTransformer(nn.Module):
    """The large model of BLT. Positions are patch indices; no window (its cache grows by one
    entry per completed patch)."""

    def __init__(self, config: BLTConfig) -> None:
        super().__init__()
        c = config
        self.stack = TransformerStack(
            c.effective_global_hidden_size, c.effective_global_num_heads, c.effective_global_intermediate_size, c.global_layers, kind=c.global_attention,
            window=None, rope_theta=c.effective_global_rope_theta, attn_dropout=c.attention_dropout,
            resid_dropout=c.resid_dropout, headwise_norm=c.headwise_norm, eps=c.norm_eps)
        self.norm = RMSNorm(c.effective_global_hidden_size, c.norm_eps) if c.global_final_norm else nn.Identity()

    def forward(self, patches: torch.Tensor, cache: StackCache | None = None) -> torch.Tensor:
        """patches: [B, P, Dg] -> latents [B, P, Dg]."""
        return self.norm(self.stack(patches, cache=cache))

    def new_cache(self, device: torch.device) -> StackCache:
        return self.stack.new_cache(device)
