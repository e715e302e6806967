"""Local decoder: byte states read patch latents, then a windowed causal stack -> logits.

Causality (docs/architecture.md, "Decoder causality"): the state at position t predicts id t + 1; with j the patch holding t + 1, it may
read latents of patches <= j - 1 only. `read` gives r = j - 1 per position. With hierarchical
memory M, the byte reads patches r - M + 1 .. r; an optional gate sigmoid(W h + b) scales what
the cross-attention adds to the residual stream. M = 1 and no gate is plain BLT.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BLTConfig
from ..ids import VOCAB_SIZE
from .attention import CrossAttention, ResidualCrossAttention, window_mask
from .layers import RMSNorm
from .transformer import StackCache, TransformerStack


class LocalDecoder(nn.Module):
    def __init__(self, config: BLTConfig) -> None:
        super().__init__()
        c = config
        D, k = c.hidden_size, c.cross_attn_k
        self.dim, self.k, self.memory = D, k, c.decoder_memory_patches
        self.latent_proj = nn.Linear(c.effective_global_hidden_size, k * D, bias=False)  # k keys per patch latent
        self.stack = TransformerStack(
            D, c.num_heads, c.effective_decoder_intermediate_size, c.decoder_layers, kind=c.decoder_attention,
            window=c.window_size, rope_theta=c.rope_theta, attn_dropout=c.attention_dropout,
            resid_dropout=c.resid_dropout, headwise_norm=c.headwise_norm, eps=c.norm_eps)
        n_cross = c.decoder_layers if c.cross_attn_all_layers_decoder else 1
        cross = ResidualCrossAttention if c.cross_attn_double_residual else CrossAttention
        self.cross = nn.ModuleList(cross(D, D, c.num_heads, c.attention_dropout, c.norm_eps)
                                   for _ in range(n_cross))
        self.gates = nn.ModuleList(nn.Linear(D, D) for _ in range(n_cross)) if c.decoder_gate else None
        self.drop = nn.Dropout(c.resid_dropout)
        self.norm = RMSNorm(D, c.norm_eps)
        self.head = nn.Linear(D, VOCAB_SIZE, bias=False)

    def latent_keys(self, latents: torch.Tensor) -> torch.Tensor:
        """latents: [B, P, Dg] -> [B, P * k, D] key sources (k per patch)."""
        B, P, _ = latents.shape
        return self.latent_proj(latents).view(B, P * self.k, self.dim)

    def memory_kv(self, latents: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per cross-attention layer k/v of the given latents (cached during generation)."""
        src = self.latent_keys(latents)
        return [ca.kv(src) for ca in self.cross]

    def read_mask(self, read: torch.Tensor, key_patch: torch.Tensor) -> torch.Tensor:
        """read: [B, S] latest readable patch; key_patch: [Sk] patch of each key -> [B, S, Sk]."""
        kp = key_patch[None, None, :]
        r = read[..., None]
        return (kp <= r) & (kp > r - self.memory)

    def read_latents(self, i: int, x: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]],
                     mask: torch.Tensor | None) -> torch.Tensor:
        """Before decoder layer i: x [B, S, D] plus what its cross-attention reads from the
        latents' (k, v) = mem[i] where `mask` [B, S, Sk] allows, scaled by the gate if any.
        Layers past the cross-attention ones (cross_attn_all_layers_decoder off) read nothing."""
        if i >= len(self.cross):
            return x
        k, v = mem[i]
        delta = self.cross[i](x, k, v, mask)
        if self.gates is not None:
            delta = torch.sigmoid(self.gates[i](x)) * delta
        return x + self.drop(delta)

    def step(self, h: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]], cache: StackCache,
             read_mask: torch.Tensor | None = None) -> torch.Tensor:
        """One cached position (h: [B, 1, D], B sequences in step) whose readable latents are
        `mem`; `read_mask` [B, 1, Sk] hides padded latents (None: every one is read)."""
        stack = self.stack
        t, slot = cache.count, cache.slot()
        cos, sin = stack.step_rope(t, h.dtype, h.device)
        x = h
        for i, (layer, lc) in enumerate(zip(stack.layers, cache.layers)):
            x = self.read_latents(i, x, mem, read_mask)
            x = layer.step(x, cos, sin, lc, slot)
        cache.commit_one(slot, t)
        return self.head(self.norm(x))

    def forward(self, h: torch.Tensor, read: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]],
                key_patch: torch.Tensor, pos: torch.Tensor | None = None,
                cache: StackCache | None = None) -> torch.Tensor:
        """h: [B, S, D] encoder byte states; read: [B, S]; mem: per-layer (k, v) of latents with
        `key_patch` [Sk] their patch indices -> logits [B, S, 260]."""
        B, S, _ = h.shape
        mask = self.read_mask(read, key_patch)
        stack = self.stack
        if pos is None:
            start = cache.count if cache is not None else 0
            pos = torch.arange(start, start + S, device=h.device)
        cos, sin = stack.rope(pos, h.dtype)
        if cache is None:
            plain = stack.window is None or S <= stack.window
            self_mask = None if plain else window_mask(pos, pos, stack.window)
            write = None
            layer_caches = [None] * len(stack.layers)
        else:
            self_mask = cache.mask(pos, stack.window)
            write = cache.plan(S)
            layer_caches = cache.layers
        x = h
        for i, (layer, lc) in enumerate(zip(stack.layers, layer_caches)):
            x = self.read_latents(i, x, mem, mask)
            x = layer(x, cos, sin, self_mask, lc, write)
        if cache is not None:
            cache.commit(write, pos, torch.zeros_like(pos))
        return self.head(self.norm(x))

    def continue_logits(self, h: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]],
                        cache: StackCache, read_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the last cached position again (h: [1, 1, D], already stored in `cache`), as
        if it read every latent in `mem` instead; stores nothing. For the configs' option
        `last_position_continues_patch`: the cache keeps the state with the real reads."""
        stack = self.stack
        t = cache.count - 1
        pos = torch.tensor([t], device=h.device)
        cos, sin = stack.rope(pos, h.dtype)
        self_mask = cache.mask(pos, stack.window, before=t)  # the stored entry of t is replaced by the new one
        # every latent in `mem`, masked as the full forward's reads are (the same attention kernel)
        every = torch.ones(1, 1, mem[0][0].shape[2], dtype=torch.bool, device=h.device) if read_mask is None else read_mask
        x = h
        for i, (layer, lc) in enumerate(zip(stack.layers, cache.layers)):
            x = self.read_latents(i, x, mem, every)
            x = layer(x, cos, sin, self_mask, lc)  # no write plan: attends to the cache, stores nothing
        return self.head(self.norm(x))

    def new_cache(self, device: torch.device) -> StackCache:
        return self.stack.new_cache(device)
