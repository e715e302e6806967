"""Attention: standard (SDPA), differential (Ye et al. 2024), cross-attention, masks.

Masks are built from absolute key/query positions (and optional segment ids), never from
tensor offsets, so a ring-buffer KV cache whose slots are out of order gives exactly the
same attention as a full forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import RMSNorm, apply_rotary

HEADWISE_NORM_INIT = 0.1  # initial gain of the differential heads' RMSNorm (see SelfAttention)


def lambda_init_schedule(layer: int) -> float:
    """lambda_init for layer l >= 1 (1-based): 0.8 - 0.6 exp(-0.3 (l - 1))."""
    if layer < 1:
        raise ValueError(f"layer: must be >= 1, got {layer}")
    return 0.8 - 0.6 * math.exp(-0.3 * (layer - 1))


def window_mask(
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int | None,
    q_seg: torch.Tensor | None = None,
    k_seg: torch.Tensor | None = None,
    k_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Causal sliding-window mask, True = may attend.

    q_pos: [B, Sq] or [Sq]; k_pos: [B, Sk] or [Sk]; segments (same shapes) restrict attention
    to equal segment ids; k_valid marks filled cache slots. Returns [B or 1, 1, Sq, Sk].
    """
    if q_pos.dim() == 1:
        q_pos = q_pos[None]
    if k_pos.dim() == 1:
        k_pos = k_pos[None]
    diff = q_pos[:, :, None] - k_pos[:, None, :]  # [B, Sq, Sk]
    mask = diff >= 0
    if window is not None:
        mask = mask & (diff < window)
    if q_seg is not None and k_seg is not None:
        mask = mask & (q_seg[:, :, None] == k_seg[:, None, :])
    if k_valid is not None:
        if k_valid.dim() == 1:
            k_valid = k_valid[None]
        mask = mask & k_valid[:, None, :]
    return mask[:, None]


class SelfAttention(nn.Module):
    """Multi-head self-attention with rotary embeddings.

    kind="standard": H heads on scaled_dot_product_attention.
    kind="differential": H/2 heads, each with two query/key maps of width d and one value of
    width 2d: (softmax(Q1K1) - lambda softmax(Q2K2)) V, headwise RMSNorm, times (1 - lambda_init).
    Projections have the same shapes in both kinds, so parameter counts match (plus 4d lambdas).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kind: str = "standard",
        layer_index: int = 1,
        dropout: float = 0.0,
        headwise_norm: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.dim, self.num_heads, self.kind = dim, num_heads, kind
        self.head_dim = dim // num_heads
        self.dropout = dropout
        # fused q/k/v projection: one matmul per step matters for byte-by-byte generation
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        if kind == "differential":
            d = self.head_dim
            self.lambda_init = lambda_init_schedule(layer_index)
            self.lambda_q1 = nn.Parameter(torch.randn(d) * 0.1)
            self.lambda_k1 = nn.Parameter(torch.randn(d) * 0.1)
            self.lambda_q2 = nn.Parameter(torch.randn(d) * 0.1)
            self.lambda_k2 = nn.Parameter(torch.randn(d) * 0.1)
            self.headwise_norm = RMSNorm(2 * d, eps=eps) if headwise_norm else None
            if self.headwise_norm is not None:
                # the norm makes each head's output RMS 1 at initialisation, while a standard head
                # averages near-random values over its window (RMS ~0.01 in the local layers): a gain
                # of 1 starts the branch ~20x too loud and short runs never recover (issue 12)
                nn.init.constant_(self.headwise_norm.weight, HEADWISE_NORM_INIT)
        elif kind != "standard":
            raise ValueError(f"attention kind: must be 'standard' or 'differential', got {kind!r}")

    # q/k: [B, Hk, S, d]; v: [B, Hv, S, dv]
    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        B, S, _ = x.shape
        d = self.head_dim
        qk, v = self.wqkv(x).split([2 * self.dim, self.dim], dim=-1)
        qk = apply_rotary(qk.view(B, S, 2 * self.num_heads, d).transpose(1, 2), cos, sin)  # q and k at once
        q, k = qk[:, : self.num_heads], qk[:, self.num_heads:]
        if self.kind == "standard":
            v = v.view(B, S, self.num_heads, d).transpose(1, 2)
        else:
            v = v.view(B, S, self.num_heads // 2, 2 * d).transpose(1, 2)
        return q, k, v

    def lambda_value(self) -> torch.Tensor:
        l1 = torch.exp(torch.dot(self.lambda_q1.float(), self.lambda_k1.float()))
        l2 = torch.exp(torch.dot(self.lambda_q2.float(), self.lambda_k2.float()))
        return l1 - l2 + self.lambda_init

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               causal: bool = True) -> torch.Tensor:
        """q: [B, H, Sq, d], k: [B, H, Sk, d], mask: [B|1, 1, Sq, Sk] -> [B, Sq, dim].

        mask None: plain causal attention over aligned q/k (SDPA's fast path), or with
        causal=False every query sees every key (one cached step over its window)."""
        B, _, Sq, _ = q.shape
        p = self.dropout if self.training else 0.0
        causal = mask is None and causal
        if self.kind == "standard":
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        else:
            # heads come in pairs (2h, 2h+1) -> maps 1 and 2 of differential head h
            q1, q2 = q[:, 0::2], q[:, 1::2]
            k1, k2 = k[:, 0::2], k[:, 1::2]
            a1 = F.scaled_dot_product_attention(q1, k1, v, attn_mask=mask, dropout_p=p, is_causal=causal)
            a2 = F.scaled_dot_product_attention(q2, k2, v, attn_mask=mask, dropout_p=p, is_causal=causal)
            lam = self.lambda_value().to(a1.dtype)
            out = a1 - lam * a2  # [B, H/2, Sq, 2d]
            if self.headwise_norm is not None:
                out = self.headwise_norm(out) * (1.0 - self.lambda_init)
        out = out.transpose(1, 2).reshape(B, Sq, self.dim)
        return self.wo(out)


class CrossAttention(nn.Module):
    """Queries from one sequence attend to keys/values of another under an explicit mask.

    Used to pool bytes into patches (encoder) and to let bytes read patch latents (decoder).
    Rows with nothing to attend to produce zeros instead of NaN.
    """

    def __init__(self, dim: int, kv_dim: int, num_heads: int, dropout: float = 0.0, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = dim // num_heads
        self.dropout = dropout
        self.q_norm = RMSNorm(dim, eps)
        self.kv_norm = RMSNorm(kv_dim, eps)
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(kv_dim, dim, bias=False)
        self.wv = nn.Linear(kv_dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def kv(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src: [B, Sk, kv_dim] -> k, v: [B, H, Sk, d] (cacheable)."""
        B, Sk, _ = src.shape
        s = self.kv_norm(src)
        k = self.wk(s).view(B, Sk, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.wv(s).view(B, Sk, self.num_heads, self.head_dim).transpose(1, 2)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: [B, Sq, dim]; mask: [B, Sq, Sk] (True = attend; None = every key) -> [B, Sq, dim]."""
        B, Sq, _ = x.shape
        q = self.wq(self.q_norm(x)).view(B, Sq, self.num_heads, self.head_dim).transpose(1, 2)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v)
            return self.wo(out.transpose(1, 2).reshape(B, Sq, self.dim))
        empty = ~mask.any(-1)  # [B, Sq]
        safe = mask | empty[..., None]
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe[:, None], dropout_p=p)
        out = out.transpose(1, 2).reshape(B, Sq, self.dim)
        out = out.masked_fill(empty[..., None], 0.0)
        return self.wo(out)


class ResidualCrossAttention(CrossAttention):
    """CrossAttention whose output includes its query input x (as in transformers' BLT port):
    a caller adding it to a residual stream counts x twice. Same parameters as CrossAttention."""

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return super().forward(x, k, v, mask) + x
