"""Local encoder: bytes -> byte states -> pooled patch vectors for the global transformer."""

from __future__ import annotations

import torch
from torch import nn

from ..config import BLTConfig
from ..ids import VOCAB_SIZE
from .attention import CrossAttention, ResidualCrossAttention
from .hashing import HashNgramEmbedding
from .transformer import StackCache, TransformerStack


class LocalEncoder(nn.Module):
    """Byte + hash n-gram embeddings, a windowed causal stack, and patch pooling.

    Byte states never depend on patch boundaries; only `pool` does.
    """

    def __init__(self, config: BLTConfig) -> None:
        super().__init__()
        c = config
        D, k = c.hidden_size, c.cross_attn_k
        self.dim, self.k = D, k
        self.embed = nn.Embedding(VOCAB_SIZE, D)
        self.hash_embed = HashNgramEmbedding(D, c.ngram_sizes, c.ngram_vocab_size, c.ngram_hash_functions)
        self.stack = TransformerStack(
            D, c.num_heads, c.intermediate_size, c.encoder_layers, kind=c.encoder_attention,
            window=c.window_size, rope_theta=c.rope_theta, attn_dropout=c.attention_dropout,
            resid_dropout=c.resid_dropout, headwise_norm=c.headwise_norm, eps=c.norm_eps)
        # patch pooling: max-pool init -> k queries per patch -> cross-attention to the patch's bytes
        self.pool_proj = nn.Linear(D, k * D, bias=False)
        cross = ResidualCrossAttention if c.cross_attn_double_residual else CrossAttention
        self.pool_attn = cross(D, D, c.num_heads, c.attention_dropout, c.norm_eps)
        self.to_global = nn.Linear(k * D, c.effective_global_hidden_size, bias=False) if k * D != c.effective_global_hidden_size else nn.Identity()

    def embed_ids(self, ids: torch.Tensor, context: list[int] | None = None) -> torch.Tensor:
        """ids: [B, S] -> [B, S, D]. `context`: up to max_n - 1 ids before `ids` (batch 1,
        cached steps), so the n-grams that reach back before `ids` hash as in a full forward."""
        if context is not None and ids.shape == (1, 1):
            # one cached step: hash the n-grams ending here with integer arithmetic
            rows = torch.tensor(self.hash_embed.last_bucket_ids(context + ids[0].tolist()), device=ids.device)
            return self.embed(ids) + self.hash_embed.table(rows).sum(0)
        if context:
            full = torch.cat([torch.tensor([context], dtype=ids.dtype, device=ids.device), ids], dim=1)
            return self.embed(ids) + self.hash_embed(full)[:, len(context):]
        return self.embed(ids) + self.hash_embed(ids)

    def forward(self, ids: torch.Tensor, cache: StackCache | None = None,
                context: list[int] | None = None) -> torch.Tensor:
        """ids: [B, S] -> byte states [B, S, D]."""
        return self.stack(self.embed_ids(ids, context), cache=cache)

    def pool(self, h: torch.Tensor, patch_ids: torch.Tensor, num_patches: int) -> torch.Tensor:
        """h: [B, T, D], patch_ids: [B, T] -> patch vectors [B, P, global width]."""
        B, T, D = h.shape
        P, k = num_patches, self.k
        idx = patch_ids.clamp(0, P - 1)
        init = h.new_full((B, P, D), float("-inf"))
        init = init.scatter_reduce(1, idx[..., None].expand(B, T, D), h, reduce="amax", include_self=True)
        init = torch.where(torch.isfinite(init), init, torch.zeros_like(init))  # empty (padding) patches
        q = self.pool_proj(init).view(B, P * k, D)
        q_patch = torch.arange(P, device=h.device).repeat_interleave(k)  # [P*k]
        mask = q_patch[None, :, None] == idx[:, None, :]  # [B, P*k, T]
        kk, vv = self.pool_attn.kv(h)
        out = q + self.pool_attn(q, kk, vv, mask)
        return self.to_global(out.view(B, P, k * D))
