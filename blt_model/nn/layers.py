"""Basic building blocks: RMSNorm, rotary position embeddings, SwiGLU feed-forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square norm (no mean subtraction, no bias)."""

    def __init__(self, dim: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        # half precision: normalise in float32 for stability
        y = F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).to(x.dtype)
        return y * self.weight if self.weight is not None else y


def rotary_cos_sin(positions: torch.Tensor, dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin tables for absolute `positions` (any shape [...]) -> [..., dim].

    Rotate-half layout: channel i pairs with channel i + dim/2. The sine table carries the
    sign of the rotation (-sin on the first half), so `apply_rotary` needs one roll instead of
    a split, a negation and a concatenation. Computed from positions, so cached generation
    uses exactly the values of a full forward.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) / dim))
    freqs = positions.to(torch.float32)[..., None] * inv_freq  # [..., dim/2]
    cos, sin = freqs.cos(), freqs.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([-sin, sin], dim=-1).to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, S, d]; cos/sin from `rotary_cos_sin`: [B, S, d] or [S, d].

    Equals x * cos + rotate_half(x) * |sin| with rotate_half(x) = (-x2, x1)."""
    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin


class SwiGLU(nn.Module):
    """Gated feed-forward: w2(silu(w1 x) * w3 x), with w1 and w3 fused into one matrix w13."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden = hidden
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).split(self.hidden, dim=-1)
        return self.dropout(self.w2(F.silu(gate) * up))
