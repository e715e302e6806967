"""Pre-norm transformer blocks and stacks with sliding-window KV caches.

A stack is called either over a whole sequence (no cache) or incrementally with a
`StackCache`. The cache is a ring buffer of `capacity` slots (the attention window) for the
local stacks and the entropy model, and grows by one entry per call step for the global stack
(capacity None). Both paths build the same position-based mask, so they agree exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import SelfAttention, window_mask
from .layers import RMSNorm, SwiGLU, rotary_cos_sin


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, kind: str, layer_index: int, attn_dropout: float,
                 resid_dropout: float, headwise_norm: bool, eps: float) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(dim, eps)
        self.attn = SelfAttention(dim, heads, kind, layer_index, attn_dropout, headwise_norm, eps)
        self.ffn_norm = RMSNorm(dim, eps)
        self.ffn = SwiGLU(dim, ffn, resid_dropout)
        self.drop = nn.Dropout(resid_dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                layer_cache: LayerCache | None = None, write: WriteSpec | None = None) -> torch.Tensor:
        """x: [B, S, dim] -> [B, S, dim]. With `layer_cache` the new positions also attend to
        the cached keys; they are stored in it only with a `write` plan (else it stays as it was)."""
        q, k, v = self.attn.project(self.attn_norm(x), cos, sin)
        if layer_cache is not None:
            k_all, v_all = layer_cache.keys_with(k, v)
            if write is not None:
                layer_cache.store(k, v, write)
        else:
            k_all, v_all = k, v
        x = x + self.drop(self.attn.attend(q, k_all, v_all, mask))
        return x + self.ffn(self.ffn_norm(x))

    def step(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layer_cache: LayerCache,
             slot: int) -> torch.Tensor:
        """One cached position (batch 1, no segments): write k/v into `slot`, attend to every
        live slot. Live slots are exactly the window, so no mask is needed."""
        q, k, v = self.attn.project(self.attn_norm(x), cos, sin)
        k_all, v_all = layer_cache.step(k, v, slot)
        x = x + self.attn.attend(q, k_all, v_all, None, causal=False)
        return x + self.ffn(self.ffn_norm(x))


class WriteSpec:
    """Which new entries go to which ring slots (shared by all layers of one stack step)."""

    def __init__(self, src: torch.Tensor, dst: torch.Tensor | None) -> None:
        self.src = src  # indices into the new entries
        self.dst = dst  # ring slots (None = append)


class LayerCache:
    """Keys/values of one attention layer: a ring of `capacity` slots, or (capacity None) a
    buffer that grows by doubling and holds `n` entries."""

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.n = 0  # entries stored (growing buffer) / slots ever written (ring)

    def _ensure(self, k: torch.Tensor, v: torch.Tensor, size: int) -> None:
        have = 0 if self.k is None else self.k.shape[2]
        if self.capacity is not None:
            size = self.capacity
        if have >= size:
            return
        new = size if self.capacity is not None else max(size, 2 * have, 64)
        B, H, _, d = k.shape
        nk = k.new_zeros(B, H, new, d)
        nv = v.new_zeros(B, v.shape[1], new, v.shape[3])
        if self.k is not None:
            nk[:, :, :have] = self.k
            nv[:, :, :have] = self.v
        self.k, self.v = nk, nv

    def keys_with(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached keys/values followed by the new ones (general path, masked by positions)."""
        if self.capacity is not None:
            self._ensure(k, v, self.capacity)  # allocate the ring once; empty slots are masked
            return torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        if self.k is None or self.n == 0:
            return k, v
        return torch.cat([self.k[:, :, : self.n], k], dim=2), torch.cat([self.v[:, :, : self.n], v], dim=2)

    def store(self, k: torch.Tensor, v: torch.Tensor, write: WriteSpec) -> None:
        S = k.shape[2]
        if self.capacity is None:
            self._ensure(k, v, self.n + S)
            self.k[:, :, self.n: self.n + S] = k
            self.v[:, :, self.n: self.n + S] = v
        else:
            self.k[:, :, write.dst] = k[:, :, write.src]
            self.v[:, :, write.dst] = v[:, :, write.src]
        self.n += S

    def step(self, k: torch.Tensor, v: torch.Tensor, slot: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one entry at `slot`; return the live entries (slots fill in order from 0)."""
        self._ensure(k, v, self.n + 1)
        self.k[:, :, slot: slot + 1] = k
        self.v[:, :, slot: slot + 1] = v
        self.n += 1
        live = self.n if self.capacity is None else min(self.n, self.capacity)
        return self.k[:, :, :live], self.v[:, :, :live]

    def nbytes(self) -> int:
        return 0 if self.k is None else self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


class StackCache:
    """Per-stack cache: one LayerCache per layer plus the positions/segments of the slots."""

    def __init__(self, num_layers: int, capacity: int | None, device: torch.device) -> None:
        self.capacity = capacity
        self.layers = [LayerCache(capacity) for _ in range(num_layers)]
        self.count = 0  # entries ever written
        if capacity is None:
            self.pos = torch.zeros(0, dtype=torch.long, device=device)
            self.seg = torch.zeros(0, dtype=torch.long, device=device)
            self.valid = torch.zeros(0, dtype=torch.bool, device=device)
        else:
            self.pos = torch.zeros(capacity, dtype=torch.long, device=device)
            self.seg = torch.zeros(capacity, dtype=torch.long, device=device)
            self.valid = torch.zeros(capacity, dtype=torch.bool, device=device)

    def plan(self, n: int) -> WriteSpec:
        """Slots for n new entries: only the last `capacity` of them are kept."""
        dev = self.pos.device
        if self.capacity is None:
            return WriteSpec(torch.arange(n, device=dev), None)
        keep = min(n, self.capacity)
        src = torch.arange(n - keep, n, device=dev)
        dst = (self.count + src) % self.capacity
        return WriteSpec(src, dst)

    def commit(self, write: WriteSpec, pos: torch.Tensor, seg: torch.Tensor) -> None:
        n = pos.shape[0]
        if self.capacity is None:
            self.pos = torch.cat([self.pos, pos])
            self.seg = torch.cat([self.seg, seg])
            self.valid = torch.cat([self.valid, torch.ones(n, dtype=torch.bool, device=pos.device)])
        else:
            self.pos[write.dst] = pos[write.src]
            self.seg[write.dst] = seg[write.src]
            self.valid[write.dst] = True
        self.count += n

    def mask(self, pos: torch.Tensor, window: int | None, seg: torch.Tensor | None = None,
             before: int | None = None) -> torch.Tensor:
        """Attention mask of new positions `pos` [S] (segments `seg` [S]) over the keys
        [cached slots, new entries]; `before` drops cached slots at positions >= it."""
        S, dev = pos.shape[0], pos.device
        seg1 = seg if seg is not None else torch.zeros(S, dtype=torch.long, device=dev)
        valid = self.valid if before is None else self.valid & (self.pos < before)
        k_pos = torch.cat([self.pos, pos])
        k_seg = torch.cat([self.seg, seg1])
        k_valid = torch.cat([valid, torch.ones(S, dtype=torch.bool, device=dev)])
        return window_mask(pos, k_pos, window, seg1[None], k_seg[None], k_valid)

    def slot(self) -> int:
        """Slot of the next single entry."""
        return self.count if self.capacity is None else self.count % self.capacity

    def commit_one(self, slot: int, pos: int, seg: int = 0) -> None:
        if self.capacity is None:
            dev = self.pos.device
            self.pos = torch.cat([self.pos, torch.tensor([pos], device=dev)])
            self.seg = torch.cat([self.seg, torch.tensor([seg], device=dev)])
            self.valid = torch.cat([self.valid, torch.ones(1, dtype=torch.bool, device=dev)])
        else:
            self.pos[slot] = pos
            self.seg[slot] = seg
            self.valid[slot] = True
        self.count += 1

    def nbytes(self) -> int:
        return sum(layer.nbytes() for layer in self.layers) + self.pos.numel() * 8 * 2 + self.valid.numel()


class TransformerStack(nn.Module):
    """n pre-norm blocks with rotary embeddings and a causal (optionally windowed) mask."""

    def __init__(self, dim: int, heads: int, ffn: int, num_layers: int, kind: str = "standard",
                 window: int | None = None, rope_theta: float = 10000.0, attn_dropout: float = 0.0,
                 resid_dropout: float = 0.0, headwise_norm: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.window, self.rope_theta = dim, window, rope_theta
        self.head_dim = dim // heads
        self._rope_table: tuple[torch.Tensor, torch.Tensor] | None = None
        self.layers = nn.ModuleList(
            Block(dim, heads, ffn, kind, i + 1, attn_dropout, resid_dropout, headwise_norm, eps)
            for i in range(num_layers)
        )

    def new_cache(self, device: torch.device) -> StackCache:
        return StackCache(len(self.layers), self.window, device)

    def rope(self, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions, from a table grown on demand (a lookup per step instead of
        recomputing the frequencies)."""
        need = int(pos.max().item()) + 1 if pos.numel() else 1
        tab = self._rope_table
        if tab is None or tab[0].shape[0] < need or tab[0].dtype != dtype or tab[0].device != pos.device:
            n = max(need, 2 * (tab[0].shape[0] if tab is not None else 0), 512)
            self._rope_table = rotary_cos_sin(torch.arange(n, device=pos.device), self.head_dim, self.rope_theta, dtype)
            tab = self._rope_table
        return tab[0][pos], tab[1][pos]

    def step_rope(self, t: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for the single position t, as a slice of the table (no index op)."""
        tab = self._rope_table
        if tab is None or tab[0].shape[0] <= t or tab[0].dtype != dtype or tab[0].device != device:
            self.rope(torch.tensor([t], device=device), dtype)
            tab = self._rope_table
        return tab[0][t: t + 1], tab[1][t: t + 1]

    def step(self, x: torch.Tensor, cache: StackCache) -> torch.Tensor:
        """One new position (x: [1, 1, dim]) through every layer, using and updating the cache."""
        t, slot = cache.count, cache.slot()
        cos, sin = self.step_rope(t, x.dtype, x.device)
        for layer, lc in zip(self.layers, cache.layers):
            x = layer.step(x, cos, sin, lc, slot)
        cache.commit_one(slot, t)
        return x

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None, seg: torch.Tensor | None = None,
                cache: StackCache | None = None) -> torch.Tensor:
        """x: [B, S, dim]; pos: [S] absolute positions (default 0..S-1, or after the cache);
        seg: [B, S] segment ids (attention stays inside a segment) or None."""
        B, S, _ = x.shape
        if cache is not None and pos is None and S == 1 and B == 1 and seg is None:
            return self.step(x, cache)
        if pos is None:
            start = cache.count if cache is not None else 0
            pos = torch.arange(start, start + S, device=x.device)
        cos, sin = self.rope(pos, x.dtype)
        if cache is None:
            # the window never bites and no segments: plain causal attention (SDPA fast path)
            plain = seg is None and (self.window is None or S <= self.window)
            mask = None if plain else window_mask(pos, pos, self.window, seg, seg)
            for layer in self.layers:
                x = layer(x, cos, sin, mask)
            return x
        # incremental: keys = cached slots followed by the new entries
        if B != 1 and seg is not None:
            raise ValueError("cached stacks with segments support batch size 1 only")
        seg1 = seg[0] if seg is not None else torch.zeros(S, dtype=torch.long, device=x.device)
        mask = cache.mask(pos, self.window, seg1)
        write = cache.plan(S)
        for layer, lc in zip(self.layers, cache.layers):
            x = layer(x, cos, sin, mask, lc, write)
        cache.commit(write, pos, seg1)
        return x
