"""The caches of B sequences stepped together (docs/architecture.md, the incremental algorithm).

`BatchedState` is `IncrementalState` (state.py) for a batch that advances in lockstep: every
`step` appends one id to each of the B sequences. The entropy model, the encoder and the decoder
run once for all B rows (their ring caches share positions, since every row has the same length);
each row keeps its own online patcher, so its own patch boundaries, and the global stack runs
only for the rows whose byte completed a patch: their open patches are pooled (padded to the
longest), stepped through the global stack at each row's own patch index (a per-row cache,
`RowCache`), and scattered back. Each row's logits equal the single-sequence engine's within
float rounding (tests/blt_model/inference/test_batch.py checks 1e-4).

The batch composition is part of the arithmetic: the same rows stepped in another batch give
logits that agree within rounding, not bit for bit. The compressor (blt_model/codec) therefore
records its batch layout and decodes with the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..config import PatchingConfig
from ..nn.attention import window_mask
from ..nn.entropy_model import NEWLINE_ID, entropy_of_logits
from ..nn.model import BLT
from ..patching import OnlinePatcher

__all__ = ["BatchedState", "RowCache"]


class RowCache:
    """Keys/values of one global attention layer for B rows of different lengths: [B, H, cap, d]
    buffers that grow by doubling; a step writes a subset of rows, each at its own position."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def view(self, rows: torch.Tensor, pos: torch.Tensor, length: int, batch: int) -> _RowView:
        return _RowView(self, rows, pos, length, batch)

    def grow(self, k: torch.Tensor, v: torch.Tensor, batch: int, length: int) -> None:
        have = 0 if self.k is None else self.k.shape[2]
        if have >= length:
            return
        new = max(length, 2 * have, 64)
        nk = k.new_zeros(batch, k.shape[1], new, k.shape[3])
        nv = v.new_zeros(batch, v.shape[1], new, v.shape[3])
        if self.k is not None:
            nk[:, :, :have] = self.k
            nv[:, :, :have] = self.v
        self.k, self.v = nk, nv

    def nbytes(self) -> int:
        return 0 if self.k is None else 2 * self.k.numel() * self.k.element_size()


class _RowView:
    """What `Block.forward` needs of a layer cache (`keys_with`) for one step of some rows."""

    def __init__(self, cache: RowCache, rows: torch.Tensor, pos: torch.Tensor, length: int, batch: int) -> None:
        self.cache, self.rows, self.pos, self.length, self.batch = cache, rows, pos, length, batch

    def keys_with(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new entries (k: [n, H, 1, d], row i at position pos[i]) and return each
        row's first `length` entries; the caller's mask hides those past a row's own position."""
        c = self.cache
        c.grow(k, v, self.batch, self.length)
        c.k[self.rows, :, self.pos] = k[:, :, 0]
        c.v[self.rows, :, self.pos] = v[:, :, 0]
        return c.k[self.rows, :, : self.length], c.v[self.rows, :, : self.length]


class BatchedState:
    """Caches for B sequences stepped together. `step(ids)` appends one id to each."""

    def __init__(self, model: BLT, patch_config: PatchingConfig, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"batch: must be >= 1 sequence, got {batch}")
        self.model, self.cfg, self.B = model, patch_config, batch
        dev = self.device = next(model.parameters()).device
        self.ent_cache = model.entropy_model.new_cache(dev)
        self.enc_cache = model.encoder.stack.new_cache(dev)
        self.dec_cache = model.decoder.new_cache(dev)
        self.glob = [RowCache() for _ in model.global_model.stack.layers]
        self.patchers = [OnlinePatcher(patch_config) for _ in range(batch)]
        self.recent = torch.zeros(batch, model.encoder.hash_embed.max_n, dtype=torch.long, device=dev)
        self.segment = torch.zeros(batch, dtype=torch.long, device=dev)  # line counter (reset_context)
        cap = self.ent_cache.capacity or 0
        self.ent_seg = torch.zeros(batch, cap, dtype=torch.long, device=dev)  # segment of each ring slot
        self.open: list[list[torch.Tensor]] = [[] for _ in range(batch)]  # byte states of open patches
        self.completed = [0] * batch  # completed patches per row
        M = model.decoder.memory
        self.latents = torch.zeros(batch, M, model.config.effective_global_hidden_size, device=dev,
                                   dtype=next(model.parameters()).dtype)  # last M latents, newest last
        self.n_latents = [0] * batch
        self.mem: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # decoder k/v of those latents
        self.next_start = [True] * batch
        self.length = 0  # ids consumed per row

    def memory_bytes(self) -> int:
        caches = (self.ent_cache, self.enc_cache, self.dec_cache)
        open_patch = sum(t.numel() * t.element_size() for row in self.open for t in row)
        return sum(c.nbytes() for c in caches) + sum(c.nbytes() for c in self.glob) + open_patch

    @torch.no_grad()
    def step(self, ids: Sequence[int]) -> tuple[torch.Tensor, list[float], list[bool]]:
        """Consume one id per row -> (logits [B, 260] of the id after it, entropies H [B] in
        nats, whether the next position of each row starts a patch [B])."""
        if len(ids) != self.B:
            raise ValueError(f"ids: expected one id for each of the {self.B} sequences, got {len(ids)}")
        x = torch.tensor(list(ids), dtype=torch.long, device=self.device)[:, None]  # [B, 1]
        H = self._entropy_step(x)
        starts = [p.feed(int(i), h) for p, i, h in zip(self.patchers, ids, H)]
        h_new = self._encoder_step(x)  # [B, 1, D]
        self.length += 1
        continues = self.model.config.last_position_continues_patch and self.length >= 2 and any(starts)
        # the memory before this step's latents (updated in place below), for continued rows
        previous = (self._read_mask(), [(k.clone(), v.clone()) for k, v in self.mem]) if continues else None
        self._global_step(h_new, starts)
        logits = self.model.decoder.step(h_new, self.mem, self.dec_cache, self._read_mask())[:, 0]
        if previous is not None:
            logits = self._continue_last(h_new, logits, starts, previous)
        self.next_start = starts
        return logits, H, starts

    def _entropy_step(self, x: torch.Tensor) -> list[float]:
        em = self.model.entropy_model
        e = em.embed(x)
        if self.cfg.reset_context:
            e = self._segmented_step(em.stack, e, x[:, 0])
        else:
            e = em.stack.step(e, self.ent_cache)
        return entropy_of_logits(em.head(em.norm(e)))[:, 0].float().cpu().tolist()

    def _segmented_step(self, stack: torch.nn.Module, e: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """One entropy-model step whose attention stays inside each row's current line."""
        cache, dev = self.ent_cache, self.device
        pos = torch.tensor([cache.count], device=dev)
        seg = self.segment[:, None]  # [B, 1]
        k_valid = torch.cat([cache.valid, torch.ones(1, dtype=torch.bool, device=dev)])
        mask = window_mask(pos, torch.cat([cache.pos, pos]), stack.window, seg,
                           torch.cat([self.ent_seg, seg], 1), k_valid)  # [B, 1, 1, slots + 1]
        cos, sin = stack.rope(pos, e.dtype)
        write = cache.plan(1)
        for layer, lc in zip(stack.layers, cache.layers):
            e = layer(e, cos, sin, mask, lc, write)
        cache.commit(write, pos, torch.zeros_like(pos))
        if cache.capacity is None:
            self.ent_seg = torch.cat([self.ent_seg, seg], 1)
        else:
            self.ent_seg[:, write.dst] = seg
        self.segment = self.segment + (ids == NEWLINE_ID).long()
        return e

    def _encoder_step(self, x: torch.Tensor) -> torch.Tensor:
        """Byte + hash n-gram embeddings of the new ids (n-grams over each row's last max_n
        ids, zeros before the start as in a full forward), one encoder step."""
        enc = self.model.encoder
        self.recent = torch.cat([self.recent[:, 1:], x], 1)
        e = enc.embed(x)
        if enc.hash_embed.sizes and self.B <= 4:  # a few rows: integer arithmetic beats a dozen tensor ops
            recent = self.recent.tolist()
            rows = torch.tensor([enc.hash_embed.last_bucket_ids(r) for r in recent], device=self.device)
            e = e + enc.hash_embed.table(rows).sum(1)[:, None]
        elif enc.hash_embed.sizes:
            rows = enc.hash_embed.bucket_ids(self.recent)[:, -1]  # [B, tables]
            e = e + enc.hash_embed.table(rows).sum(1)[:, None]
        return enc.stack.step(e, self.enc_cache)

    def _global_step(self, h_new: torch.Tensor, starts: list[bool]) -> list[int]:
        """Pool the patches completed by this step's bytes and run the global stack for those
        rows only -> the rows that completed one."""
        for b in range(self.B):
            self.open[b].append(h_new[b, 0])
        rows = [b for b in range(self.B) if starts[b]]
        if not rows:
            return rows
        vecs = self._pool([self.open[b] for b in rows])  # [n, 1, Dg]
        for b in rows:
            self.open[b] = []
        idx = torch.tensor(rows, device=self.device)
        pos = torch.tensor([self.completed[b] for b in rows], device=self.device)
        lat = self._global_forward(vecs, idx, pos)  # [n, 1, Dg]
        self.latents[idx] = torch.cat([self.latents[idx, 1:], lat], 1)
        for b in rows:
            self.completed[b] += 1
            self.n_latents[b] = min(self.n_latents[b] + 1, self.latents.shape[1])
        self._update_memory(idx)
        return rows

    def _pool(self, patches: list[list[torch.Tensor]]) -> torch.Tensor:
        """Each row's open patch -> its patch vector [n, 1, Dg]. Rows are right-padded to the
        longest patch; padding goes to a second, ignored patch, so it is never read."""
        n, L = len(patches), max(len(p) for p in patches)
        D = patches[0][0].shape[-1]
        hh = patches[0][0].new_zeros(n, L, D)
        pid = torch.ones(n, L, dtype=torch.long, device=self.device)
        for i, states in enumerate(patches):
            hh[i, : len(states)] = torch.stack(states)
            pid[i, : len(states)] = 0
        return self.model.encoder.pool(hh, pid, 2)[:, :1]

    def _global_forward(self, x: torch.Tensor, idx: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Global stack for rows `idx`, row i's patch at index pos[i] -> latents [n, 1, Dg]."""
        gm = self.model.global_model
        length = int(pos.max()) + 1
        cos, sin = gm.stack.rope(pos, x.dtype)
        cos, sin = cos[:, None], sin[:, None]  # [n, 1, d]: one position per row
        mask = (torch.arange(length, device=self.device)[None] <= pos[:, None])[:, None, None]  # [n, 1, 1, L]
        for layer, cache in zip(gm.stack.layers, self.glob):
            x = layer(x, cos, sin, mask, cache.view(idx, pos, length, self.B))
        return gm.norm(x)

    def _update_memory(self, idx: torch.Tensor) -> None:
        """Decoder k/v of the last M latents, recomputed for the rows that gained one."""
        kv = self.model.decoder.memory_kv(self.latents[idx])
        if self.mem is None:
            self.mem = [(k.new_zeros(self.B, *k.shape[1:]), v.new_zeros(self.B, *v.shape[1:])) for k, v in kv]
        for (K, V), (k, v) in zip(self.mem, kv):
            K[idx] = k
            V[idx] = v

    def _read_mask(self) -> torch.Tensor | None:
        """[B, 1, M * k]: which latent keys each row may read (rows with fewer than M latents
        have zeros on the left); None when every row has M."""
        M = self.latents.shape[1]
        if min(self.n_latents) >= M:
            return None
        have = torch.tensor(self.n_latents, device=self.device)
        slot_ok = torch.arange(M, device=self.device)[None] >= (M - have)[:, None]  # [B, M]
        return slot_ok.repeat_interleave(self.model.decoder.k, dim=1)[:, None]

    def _continue_last(self, h_new: torch.Tensor, logits: torch.Tensor, starts: list[bool],
                       previous: tuple) -> torch.Tensor:
        """Rows whose next byte starts a patch predict it as if it continued the current one
        (the configs' `last_position_continues_patch`): they read the latents before the one
        just completed, i.e. the memory as it was before this step."""
        mask, mem = previous
        cont = self.model.decoder.continue_logits(h_new, mem, self.dec_cache, mask)[:, 0]
        pick = torch.tensor(starts, device=logits.device)[:, None]
        return torch.where(pick, cont, logits)
