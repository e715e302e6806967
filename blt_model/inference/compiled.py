"""A compiled per-byte step (issue 15): the entropy-model and encoder steps as one static graph,
the decoder step as another, over the ring buffers the caches already hold.

Eager, a byte costs about 1,400 small PyTorch operator calls; the cost is dispatch, not
arithmetic (../shared/design/speed.md). Here the slot a byte writes and its position are
tensors, every windowed layer attends to its whole ring with a mask of the filled slots (the
same attention: empty slots get weight 0), and rotary angles come from a table indexed by the
position tensor, so the shapes never change and `torch.compile` builds each graph once per
model. The global step (once per patch), the patcher and the hash n-grams stay in Python.

`compile_step(model)` -> a `CompiledStep`, or None with a one-line reason when the compiler is
unavailable (the caller generates eagerly). Inductor keeps its compiled kernels in its on-disk
cache (TORCHINDUCTOR_CACHE_DIR, default under /tmp), so a later run of the same model and shapes
compiles faster.
"""

from __future__ import annotations

import shutil
import weakref

import torch

from ..nn.entropy_model import NEWLINE_ID, entropy_of_logits
from ..nn.model import BLT
from ..nn.transformer import StackCache, TransformerStack

__all__ = ["CompiledStep", "advance", "compile_step", "compiler_problem", "ring_args"]


def compiler_problem() -> str | None:
    """Why torch.compile cannot run here (None: it can)."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if shutil.which("gcc") is None and shutil.which("cc") is None and shutil.which("clang") is None:
        return "no C compiler (gcc) on PATH for torch.compile's CPU kernels"
    return None


def _ring_layer(layer, x: torch.Tensor, k_c: torch.Tensor, v_c: torch.Tensor, cos: torch.Tensor,
                sin: torch.Tensor, slot: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One block at one position: write its k/v at ring `slot`, attend to the filled slots."""
    q, k, v = layer.attn.project(layer.attn_norm(x), cos, sin)
    k_c.index_copy_(2, slot, k)
    v_c.index_copy_(2, slot, v)
    x = x + layer.attn.attend(q, k_c, v_c, mask)
    return x + layer.ffn(layer.ffn_norm(x))


def _ring_step(stack: TransformerStack, x: torch.Tensor, ks: list[torch.Tensor], vs: list[torch.Tensor],
               valid: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """One position x [1, 1, D] through a windowed stack. `valid` [cap] marks filled slots
    (updated here); cos/sin [1, d]; slot [1]."""
    valid.index_fill_(0, slot, True)
    mask = valid[None, None, None, :]  # [1, 1, 1, cap]
    for layer, k_c, v_c in zip(stack.layers, ks, vs):
        x = _ring_layer(layer, x, k_c, v_c, cos, sin, slot, mask)
    return x


class CompiledStep:
    """The two compiled graphs of one model's per-byte step (see the module docstring)."""

    def __init__(self, model: BLT) -> None:
        self.model = model
        self.warm = self.settled = False  # see _run
        # freezing: weights become constants, so small matrix products use prepacked kernels
        opts = {"freezing": True}
        self.local = torch.compile(self._local, dynamic=False, fullgraph=True, options=opts)
        self.decode = torch.compile(self._decode, dynamic=False, fullgraph=True, options=opts)

    def _local(self, x: torch.Tensor, rows: torch.Tensor, ent: tuple, enc: tuple
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [1, 1] id, rows [n] hash-table rows -> (entropy H [1], encoder state h [1, 1, D]).
        ent/enc: (ks, vs, valid, pos, slot) of the entropy model's and the encoder's rings."""
        em, enc_m = self.model.entropy_model, self.model.encoder
        e = _ring_step(em.stack, em.embed(x), *ent)
        H = entropy_of_logits(em.head(em.norm(e)))[0]
        emb = enc_m.embed(x) + enc_m.hash_embed.table(rows).sum(0)
        return H, _ring_step(enc_m.stack, emb, *enc)

    def _decode(self, h: torch.Tensor, mem: list[tuple[torch.Tensor, torch.Tensor]], dec: tuple) -> torch.Tensor:
        """h [1, 1, D], mem: per cross layer (k, v) of the readable latents -> logits [1, V]."""
        d = self.model.decoder
        ks, vs, valid, cos, sin, slot = dec
        valid.index_fill_(0, slot, True)
        mask = valid[None, None, None, :]
        x = h
        for i, (layer, k_c, v_c) in enumerate(zip(d.stack.layers, ks, vs)):
            x = _ring_layer(layer, d.read_latents(i, x, mem, None), k_c, v_c, cos, sin, slot, mask)
        return d.head(d.norm(x))[0]


def ring_args(stack: TransformerStack, cache: StackCache, like: torch.Tensor) -> tuple | None:
    """(ks, vs, valid, cos, sin, slot) for the next position of a windowed stack's cache, or
    None where the static step does not apply (no window, ring not allocated yet)."""
    if cache.capacity is None or any(lc.k is None for lc in cache.layers):
        return None
    cos, sin = stack.step_rope(cache.count, like.dtype, like.device)  # views of the table: no recompile
    slot = torch.tensor([cache.slot()], device=like.device)
    return ([lc.k for lc in cache.layers], [lc.v for lc in cache.layers], cache.valid, cos, sin, slot)


def advance(cache: StackCache) -> None:
    """The bookkeeping of a compiled step that wrote one entry (the graph set `valid`)."""
    slot = cache.slot()
    cache.pos[slot] = cache.count
    for lc in cache.layers:
        lc.n += 1
    cache.count += 1


_STEPS: weakref.WeakKeyDictionary[BLT, CompiledStep] = weakref.WeakKeyDictionary()


def compile_step(model: BLT) -> tuple[CompiledStep | None, str | None]:
    """The CompiledStep of `model` (one per model: its graphs compile on the first step, once),
    or (None, a one-line notice) where compiling cannot work here."""
    problem = compiler_problem()
    if problem is None and any(s.window is None for s in (model.entropy_model.stack, model.encoder.stack,
                                                           model.decoder.stack)):
        problem = "a local stack without a window has no fixed-size ring to compile over"
    if problem is not None:
        return None, f"compiled step unavailable ({problem}); generating eagerly"
    if model not in _STEPS:
        _STEPS[model] = CompiledStep(model)
    return _STEPS[model], None


def feed_one(state, step: CompiledStep, tok: int) -> tuple[torch.Tensor, list[float], list[bool]] | None:
    """IncrementalState.feed([tok]) through the compiled graphs (state: an IncrementalState),
    or None before anything is cached (the caller steps eagerly)."""
    m = state.model
    like = m.decoder.head.weight
    ent = ring_args(m.entropy_model.stack, state.ent_cache, like)
    enc = ring_args(m.encoder.stack, state.enc_cache, like)
    dec = ring_args(m.decoder.stack, state.dec_cache, like)
    if ent is None or enc is None or dec is None or state.cfg.reset_context:
        return None
    # once the decoder reads its full M latents every input has its final shape
    step.settled = len(state.latents) >= m.decoder.memory
    return _feed_one(state, step, tok, ent, enc, dec)


def _run(step: CompiledStep, graph, *args):
    """Call a compiled graph; once it has run with the final shapes, without dynamo's guard
    checks (a large share of a step's overhead; guards that once forced a recompile still run).
    A recompile needed anyway (a new shape) turns the checks back on for this call."""
    if step.warm and step.settled:
        try:
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                return graph(*args)
        except RuntimeError as e:  # raised before the graph runs: nothing was written
            if "skip_guard_eval_unsafe" not in str(e):
                raise
    out = graph(*args)
    step.warm = step.settled
    return out


def _feed_one(state, step: CompiledStep, tok: int, ent: tuple, enc: tuple, dec: tuple
              ) -> tuple[torch.Tensor, list[float], list[bool]]:
    m, dev = state.model, state.device
    x = torch.tensor([[tok]], dtype=torch.long, device=dev)
    rows = torch.tensor(m.encoder.hash_embed.last_bucket_ids(state.context_ids + [tok]), device=dev)
    H_t, h = _run(step, step.local, x, rows, ent, enc)
    advance(state.ent_cache)
    advance(state.enc_cache)
    H = float(H_t)
    if tok == NEWLINE_ID:
        state.segment += 1
    state.next_start = state.patcher.feed(tok, H)
    state.ids.append(tok)
    state.context_ids = state.ids[-(state.max_n - 1):] if state.max_n > 1 else []
    h = h.clone()  # the graph's output buffer is reused by the next call
    n_done = state._global_steps(h[0], [state.next_start])
    d = m.decoder
    if n_done or state.mem is None:
        state.mem = d.memory_kv(torch.stack(state.latents[-d.memory:])[None])
    logits = _run(step, step.decode, h, state.mem, dec).clone()
    advance(state.dec_cache)
    if m.config.last_position_continues_patch and state.next_start and len(state.ids) >= 2:
        logits = state._continue_last(h[0])
    state.latents = state.latents[-d.memory:]
    state.last_entropy = H
    return logits, [H], [state.next_start]
