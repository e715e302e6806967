"""The caches of one sequence for exact incremental generation (docs/architecture.md, the
incremental algorithm).

`IncrementalState` holds one sequence's caches: the entropy model and both local stacks keep a
ring buffer of their window; the global stack keeps one entry per completed patch; the decoder
keeps the k/v of the last M patch latents. Per new byte: one entropy-model step, one encoder
step, at most one global step (only when the byte completes a patch) and one decoder step.
`CachedEngine` (engine.py) drives one of these per sequence.
"""

from __future__ import annotations

import torch

from ..config import PatchingConfig
from ..nn.entropy_model import NEWLINE_ID, entropy_of_logits
from ..nn.model import BLT
from ..nn.transformer import TransformerStack
from ..patching import OnlinePatcher
from .compiled import CompiledStep, feed_one

__all__ = ["PREFILL_CHUNK", "IncrementalState", "tail_positions"]

PREFILL_CHUNK = 512  # positions per prefill chunk: attention cost chunk x (window + chunk), linear in S


def tail_positions(stack: TransformerStack) -> int:
    """How many last positions of a long input decide a windowed stack's cache and last output:
    layer l's output at t depends on inputs back to t - l (window - 1). All for no window."""
    if stack.window is None:
        return 1 << 62
    return len(stack.layers) * (stack.window - 1) + 1


class IncrementalState:
    """Caches for one sequence. `feed(ids)` consumes ids, returns next-id logits."""

    def __init__(self, model: BLT, patch_config: PatchingConfig) -> None:
        self.model, self.cfg = model, patch_config
        dev = next(model.parameters()).device
        self.device = dev
        self.ent_cache = model.entropy_model.new_cache(dev)
        self.enc_cache = model.encoder.stack.new_cache(dev)
        self.glob_cache = model.global_model.new_cache(dev)
        self.dec_cache = model.decoder.new_cache(dev)
        self.patcher = OnlinePatcher(patch_config)
        self.ids: list[int] = []
        self.context_ids: list[int] = []  # last max_n - 1 ids for the hash n-grams
        self.segment = 0  # line counter for reset_context
        self.patch_states: list[torch.Tensor] = []  # byte states of the open patch, [D] each
        self.completed = 0  # number of completed (pooled, global-stepped) patches
        self.latents: list[torch.Tensor] = []  # last M latents [Dg]
        self.mem: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # decoder k/v of those latents
        self.next_start = True  # does the next position start a patch
        self.last_entropy = float("nan")
        self.last_entropy_logits: torch.Tensor | None = None  # [260]: the entropy model's, last position
        self.max_n = model.encoder.hash_embed.max_n
        self.compiled: CompiledStep | None = None  # single steps through compiled graphs (compiled.py)

    def memory_bytes(self) -> int:
        caches = (self.ent_cache, self.enc_cache, self.glob_cache, self.dec_cache)
        lat = sum(t.numel() * t.element_size() for t in self.latents)
        open_patch = sum(t.numel() * t.element_size() for t in self.patch_states)
        return sum(c.nbytes() for c in caches) + lat + open_patch

    def local_memory_bytes(self) -> int:
        """Everything except the global stack's one-entry-per-patch cache."""
        return self.memory_bytes() - self.glob_cache.nbytes()

    @torch.no_grad()
    def feed(self, new_ids: list[int], all_logits: bool = True) -> tuple[torch.Tensor, list[float], list[bool]]:
        """Consume ids -> (logits [S, 260] for each fed position, entropies H_t [S],
        next_starts [S]: whether position t + 1 starts a patch).

        A long input runs in chunks of `PREFILL_CHUNK` positions, so attention costs
        chunk x (window + chunk) per chunk: linear in S, no S x S mask. With `all_logits` False
        only the last position's logits are returned ([1, 260]), and the stacks whose outputs
        nothing else needs (the decoder; the entropy model when the patching does not use
        entropies, whose H_t but the last are then NaN) run only over the last positions that
        decide their caches (`tail_positions`): the next steps' results are the same."""
        S = len(new_ids)
        dec_from = 0 if all_logits else max(0, S - tail_positions(self.model.decoder.stack))
        ent_from = 0 if all_logits or self.cfg.needs_entropies else max(
            0, S - tail_positions(self.model.entropy_model.stack))
        logits, H, starts = [], [], []
        for a in range(0, S, PREFILL_CHUNK):
            b = min(S, a + PREFILL_CHUNK)
            lg, h, st = self._feed_chunk(new_ids[a:b], max(0, dec_from - a), max(0, ent_from - a), b == S)
            logits.append(lg)
            H.extend(h)
            starts.extend(st)
        if ent_from:  # in the tail only the last entropy saw its whole window
            H[:-1] = [float("nan")] * (S - 1)
        out = torch.cat(logits)
        return (out if all_logits else out[-1:]), H, starts

    def _feed_chunk(self, new_ids: list[int], skip_dec: int, skip_ent: int, last: bool
                    ) -> tuple[torch.Tensor, list[float], list[bool]]:
        """feed() for one chunk (`last`: the input's last); the decoder (entropy model) skips its
        first skip_dec (skip_ent) positions, whose logits (entropies) nothing needs: logits
        [S - skip_dec, 260]."""
        self.last_entropy_logits = None  # set by an eager entropy step; compiled steps keep none
        if self.compiled is not None and len(new_ids) == 1:
            out = feed_one(self, self.compiled, new_ids[0])
            if out is not None:
                return out
        x = torch.tensor([new_ids], dtype=torch.long, device=self.device)  # [1, S]
        H, next_starts = self._entropy_steps(x, new_ids, skip_ent)
        h_new = self.model.encoder(x, cache=self.enc_cache, context=self.context_ids)[0]  # [S, D]
        self.ids.extend(new_ids)
        self.context_ids = self.ids[-(self.max_n - 1):] if self.max_n > 1 else []
        first_new = self.completed
        n_done = self._global_steps(h_new, next_starts)
        if skip_dec >= len(new_ids):
            self.dec_cache.count += len(new_ids)  # positions out of every later byte's window
            self.mem = None
            logits = h_new.new_zeros(0, self.model.config.vocab_size)
        elif len(new_ids) == 1:
            logits = self._decode_one(h_new, n_done)
        else:
            logits = self._decode_many(h_new, next_starts, n_done, first_new, skip_dec)
        if (self.model.config.last_position_continues_patch and last and next_starts[-1]
                and len(self.ids) >= 2):
            logits = torch.cat([logits[:-1], self._continue_last(h_new)])
        self.latents = self.latents[-self.model.decoder.memory:]
        self.last_entropy = H[-1]
        return logits, H, next_starts

    def _entropy_steps(self, x: torch.Tensor, new_ids: list[int], skip: int = 0) -> tuple[list[float], list[bool]]:
        """Entropy-model steps over x [1, S], the first `skip` positions left out (their H_t
        NaN) -> (H_t [S], whether t + 1 starts a patch [S])."""
        segs = []
        for i in new_ids:
            segs.append(self.segment)
            if i == NEWLINE_ID:
                self.segment += 1
        H = [float("nan")] * min(skip, len(new_ids))
        self.ent_cache.count += len(H)  # positions out of every later byte's window
        if len(H) < len(new_ids):
            reset = self.cfg.reset_context
            seg = torch.tensor([segs[skip:]], dtype=torch.long, device=self.device) if reset else None
            ent_logits = self.model.entropy_model(x[:, skip:], reset_context=reset, cache=self.ent_cache, seg=seg)
            H += entropy_of_logits(ent_logits)[0].tolist()
            self.last_entropy_logits = ent_logits[0, -1]
        next_starts = []
        for tok, h in zip(new_ids, H):
            self.next_start = self.patcher.feed(tok, h)
            next_starts.append(self.next_start)
        return H, next_starts

    def _global_steps(self, h_new: torch.Tensor, next_starts: list[bool]) -> int:
        """Pool the patches these bytes complete and run the global stack once for all of
        them -> how many completed."""
        m, dev = self.model, self.device
        done_states: list[list[torch.Tensor]] = []
        for i in range(h_new.shape[0]):
            self.patch_states.append(h_new[i])
            if next_starts[i]:
                done_states.append(self.patch_states)
                self.patch_states = []
        if not done_states:
            return 0
        lens = [len(s) for s in done_states]
        hh = torch.stack([t for s in done_states for t in s])[None]  # [1, L, D]
        pid = torch.repeat_interleave(torch.arange(len(lens), device=dev), torch.tensor(lens, device=dev))[None]
        vecs = m.encoder.pool(hh, pid, len(lens))  # [1, n, Dg]
        lat = m.global_model(vecs, cache=self.glob_cache)[0]  # [n, Dg]
        self.latents.extend(lat.unbind(0))
        self.completed += len(lens)
        return len(lens)

    def _decode_one(self, h_new: torch.Tensor, n_done: int) -> torch.Tensor:
        """One byte reads exactly the last M completed patches; their k/v change only when a
        patch completes."""
        dec = self.model.decoder
        if n_done or self.mem is None:
            self.mem = dec.memory_kv(torch.stack(self.latents[-dec.memory:])[None])
        return dec.step(h_new[None], self.mem, self.dec_cache)[0]  # [1, V]

    def _decode_many(self, h_new: torch.Tensor, next_starts: list[bool], n_done: int, first_new: int,
                     skip: int = 0) -> torch.Tensor:
        """Position t reads patches up to (patches completed through t) - 1; the first `skip`
        positions are left out (logits [S - skip, 260])."""
        dec, dev = self.model.decoder, self.device
        keep = self.latents[-(dec.memory + n_done):]
        first_kept = self.completed - len(keep)
        read, done = [], first_new
        for start in next_starts:
            done += int(start)
            read.append(done - 1)
        mem = dec.memory_kv(torch.stack(keep)[None])
        key_patch = torch.arange(first_kept, self.completed, device=dev).repeat_interleave(dec.k)
        self.dec_cache.count += skip  # positions out of every later byte's window
        logits = dec(h_new[None, skip:], torch.tensor([read[skip:]], device=dev), mem, key_patch,
                     cache=self.dec_cache)[0]
        self.mem = None  # rebuilt from the last M latents at the next single step
        return logits  # [S, V]

    def _continue_last(self, h_new: torch.Tensor) -> torch.Tensor:
        """The last prediction reads as if the next byte continued its patch (transformers'
        rule); the cache keeps the state with the real read, which later bytes attend to."""
        dec = self.model.decoder
        mem_c = dec.memory_kv(torch.stack(self.latents[-(dec.memory + 1):-1])[None])
        return dec.continue_logits(h_new[None, -1:], mem_c, self.dec_cache)[0]  # [1, V]
