"""Exact incremental generation (architecture.md section 4) and the no-cache reference path.

`IncrementalState` holds one sequence's caches: the entropy model and both local stacks keep a
ring buffer of their window; the global stack keeps one entry per completed patch; the decoder
keeps the k/v of the last M patch latents. Per new byte: one entropy-model step, one encoder
step, at most one global step (only when the byte completes a patch) and one decoder step.

Context limit: when the sequence reaches `max_position_embeddings`, the state is rebuilt by
re-prefilling BOS + the most recent half of the context (patch indices in events keep
counting). Logits then match a full forward over that shortened context.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch

from ..config import PatchingConfig
from ..ids import BOS_ID, EOS_ID, OFFSET, encode
from ..nn.entropy_model import NEWLINE_ID, entropy_of_logits
from ..nn.model import BLT
from ..patching import OnlinePatcher, patch_starts
from .sampling import check_sampling, sample, sampling_distribution


@dataclass
class ByteEvent:
    """One byte of a prompt or an answer, as the model saw it."""

    byte: int | None  # 0-255, None for EOS
    token_id: int
    entropy: float  # nats: H of the position before, which decided `patch_start`
    patch_start: bool
    prob: float  # probability of this id under the sampling distribution (model's for prompt bytes)
    patch_index: int
    position: int
    is_prompt: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class IncrementalState:
    """Caches for one sequence (batch 1). `feed(ids)` consumes ids, returns next-id logits."""

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
        self.max_n = model.encoder.hash_embed.max_n

    def memory_bytes(self) -> int:
        caches = (self.ent_cache, self.enc_cache, self.glob_cache, self.dec_cache)
        lat = sum(t.numel() * t.element_size() for t in self.latents)
        open_patch = sum(t.numel() * t.element_size() for t in self.patch_states)
        return sum(c.nbytes() for c in caches) + lat + open_patch

    def local_memory_bytes(self) -> int:
        """Everything except the global stack's one-entry-per-patch cache."""
        return self.memory_bytes() - self.glob_cache.nbytes()

    @torch.no_grad()
    def feed(self, new_ids: list[int]) -> tuple[torch.Tensor, list[float], list[bool]]:
        """Consume ids -> (logits [S, 260] for each fed position, entropies H_t [S],
        next_starts [S]: whether position t + 1 starts a patch)."""
        m, dev = self.model, self.device
        S = len(new_ids)
        x = torch.tensor([new_ids], dtype=torch.long, device=dev)
        # 1. entropy model step(s)
        segs = []
        for i in new_ids:
            segs.append(self.segment)
            if i == NEWLINE_ID:
                self.segment += 1
        seg = torch.tensor([segs], dtype=torch.long, device=dev) if self.cfg.reset_context else None
        ent_logits = m.entropy_model(x, reset_context=self.cfg.reset_context, cache=self.ent_cache, seg=seg)
        H = entropy_of_logits(ent_logits)[0].tolist()
        # 2. patch decisions for positions t + 1
        next_starts = []
        for tok, h in zip(new_ids, H):
            self.next_start = self.patcher.feed(tok, h)
            next_starts.append(self.next_start)
        # 3. encoder step(s)
        h_new = m.encoder(x, cache=self.enc_cache, context=self.context_ids)[0]  # [S, D]
        self.ids.extend(new_ids)
        self.context_ids = self.ids[-(self.max_n - 1):] if self.max_n > 1 else []
        # 4. pool patches completed by these bytes and run the global stack once for them
        done_states: list[list[torch.Tensor]] = []
        for i in range(S):
            self.patch_states.append(h_new[i])
            if next_starts[i]:
                done_states.append(self.patch_states)
                self.patch_states = []
        first_new = self.completed
        if done_states:
            lens = [len(s) for s in done_states]
            hh = torch.stack([t for s in done_states for t in s])[None]  # [1, L, D]
            pid = torch.repeat_interleave(torch.arange(len(lens), device=dev), torch.tensor(lens, device=dev))[None]
            vecs = m.encoder.pool(hh, pid, len(lens))  # [1, n, Dg]
            lat = m.global_model(vecs, cache=self.glob_cache)[0]  # [n, Dg]
            self.latents.extend(lat.unbind(0))
            self.completed += len(lens)
        # 5. decoder: position t reads patches up to (patches completed through t) - 1
        M = m.decoder.memory
        if S == 1:
            # one byte reads exactly the last M completed patches; their k/v change only when
            # a patch completes
            if done_states or self.mem is None:
                self.mem = m.decoder.memory_kv(torch.stack(self.latents[-M:])[None])
            logits = m.decoder.step(h_new[None], self.mem, self.dec_cache)[0]
        else:
            keep = self.latents[-(M + len(done_states)):]
            first_kept = self.completed - len(keep)
            read, done = [], first_new
            for i in range(S):
                if next_starts[i]:
                    done += 1
                read.append(done - 1)
            mem = m.decoder.memory_kv(torch.stack(keep)[None])
            key_patch = torch.arange(first_kept, self.completed, device=dev).repeat_interleave(m.decoder.k)
            logits = m.decoder(h_new[None], torch.tensor([read], device=dev), mem, key_patch, cache=self.dec_cache)[0]
            self.mem = None  # rebuilt from the last M latents at the next single step
        if m.config.last_position_continues_patch and next_starts[-1] and len(self.ids) >= 2:
            # the last prediction reads as if the next byte continued its patch (transformers'
            # rule); the cache keeps the state with the real read, which later bytes attend to
            mem_c = m.decoder.memory_kv(torch.stack(self.latents[-(M + 1):-1])[None])
            last = m.decoder.continue_logits(h_new[None, -1:], mem_c, self.dec_cache)[0]
            logits = torch.cat([logits[:-1], last])
        self.latents = self.latents[-M:]
        self.last_entropy = H[-1]
        return logits, H, next_starts


def _resolve(model: BLT, patch_config: PatchingConfig | None) -> PatchingConfig:
    return patch_config or model.config.patching


@torch.no_grad()
def reference_step(model: BLT, ids: list[int], cfg: PatchingConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full forward over `ids` (no cache) -> (logits [T, 260], entropies [T], starts [T + 1])."""
    dev = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=dev)
    ent = model.entropy_model.entropies(x, reset_context=cfg.reset_context)
    starts = patch_starts(x, ent if cfg.needs_entropies else None, cfg)
    logits = model(x, starts=starts)[0]
    return logits, ent[0], starts[0]


def _prompt_ids(prompt: str | bytes) -> list[int]:
    if not isinstance(prompt, (str, bytes, bytearray)):
        raise ValueError(f"prompt: expected str or bytes, got {type(prompt).__name__}")
    return encode(prompt, add_bos=True)


def generate_stream(
    model: BLT,
    prompt: str | bytes,
    max_new_bytes: int = 256,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float | None = 1.0,
    repetition_penalty: float = 1.0,
    patch_config: PatchingConfig | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    report_prompt: bool = False,
    stop_event: threading.Event | None = None,
) -> Iterator[ByteEvent]:
    """Yield one ByteEvent per generated byte (and per prompt byte with `report_prompt`).

    Stops at EOS (reported as an event with byte None), after `max_new_bytes`, when
    `stop_event` is set (checked between bytes), or when the caller stops iterating.
    """
    if not isinstance(max_new_bytes, int) or isinstance(max_new_bytes, bool) or max_new_bytes < 0:
        raise ValueError(f"max_new_bytes: must be an integer >= 0, got {max_new_bytes!r}")
    check_sampling(temperature, top_k, top_p, repetition_penalty)  # validate before any work
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**64):
        raise ValueError(f"seed: must be an integer in [0, 2**64), got {seed!r}")
    cfg = _resolve(model, patch_config)
    was_training = model.training
    model.eval()
    gen = torch.Generator()
    if seed is not None:
        gen.manual_seed(int(seed))
    else:
        gen.seed()
    ids = _prompt_ids(prompt)
    max_pos = model.config.max_position_embeddings
    if len(ids) > max_pos:
        ids = [BOS_ID] + ids[-(max_pos // 2):]
    try:
        with torch.inference_mode():
            yield from _generate(model, ids, cfg, max_new_bytes, temperature, top_k, top_p,
                                 repetition_penalty, gen, use_cache, report_prompt, stop_event, max_pos)
    finally:
        model.train(was_training)


def _generate(model, ids, cfg, max_new_bytes, temperature, top_k, top_p, rep, gen, use_cache,
              report_prompt, stop_event, max_pos) -> Iterator[ByteEvent]:
    patch_offset = 0  # patch indices before a context re-prefill
    seen = set(ids)  # ids the repetition penalty applies to
    if use_cache:
        state = IncrementalState(model, cfg)
        logits_all, H, next_starts = state.feed(ids)
        last_logits = logits_all[-1]
        starts = [True] + next_starts  # starts for positions 0..T
        H_list = list(H)
    else:
        logits_all, ent, st = reference_step(model, ids, cfg)
        last_logits = logits_all[-1]
        starts = st.tolist()
        H_list = ent.tolist()
    if report_prompt:
        probs = torch.softmax(logits_all.float(), -1)
        pid = 0
        for s in range(1, len(ids)):
            pid += int(starts[s])
            b = ids[s] - OFFSET
            yield ByteEvent(b if b >= 0 else None, ids[s], float(H_list[s - 1]), bool(starts[s]),
                            float(probs[s - 1, ids[s]]), pid, s, True)
    patch_index = sum(int(x) for x in starts) - 1  # index of the patch holding the next position
    seq = list(ids)
    for _ in range(max_new_bytes):
        if stop_event is not None and stop_event.is_set():
            return
        history = torch.tensor(sorted(seen)) if rep != 1.0 else None
        probs = sampling_distribution(last_logits, temperature, top_k, top_p, rep, history)
        tok = sample(probs, gen)
        if use_cache:
            next_is_start, ent_val = state.next_start, state.last_entropy
        else:
            next_is_start, ent_val = bool(starts[len(seq)]), float(H_list[len(seq) - 1])
        ev = ByteEvent(tok - OFFSET if tok >= OFFSET else None, tok, float(ent_val), bool(next_is_start),
                       float(probs[tok]), patch_offset + patch_index, len(seq), False)
        yield ev
        if tok == EOS_ID:
            return
        seq.append(tok)
        seen.add(tok)
        if len(seq) >= max_pos:  # context limit: re-prefill from the most recent half
            patch_offset += patch_index + 1
            seq = [BOS_ID] + seq[-(max_pos // 2):]
            if use_cache:
                state = IncrementalState(model, cfg)
                logits_all, H, ns = state.feed(seq)
                starts, H_list = [True] + ns, list(H)
            else:
                logits_all, ent, st = reference_step(model, seq, cfg)
                starts, H_list = st.tolist(), ent.tolist()
            last_logits = logits_all[-1]
            patch_index = sum(int(x) for x in starts) - 1 - 1  # BOS patch is not new
            continue
        if use_cache:
            lg, H, ns = state.feed([tok])
            last_logits = lg[-1]
            patch_index += int(ns[-1])
        else:
            logits_all, ent, st = reference_step(model, seq, cfg)
            last_logits = logits_all[-1]
            starts, H_list = st.tolist(), ent.tolist()
            patch_index += int(starts[-1])


def generate_text(
    model: BLT,
    start_text: str | bytes,
    max_length: int = 256,
    temperature: float = 1.0,
    patch_config: PatchingConfig | None = None,
    top_k: int = 0,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    seed: int | None = None,
    stop: list[str] | str | None = None,
    use_cache: bool = True,
) -> str:
    """Generate up to `max_length` bytes after `start_text`; return the new text.

    Stops at EOS, at any of the `stop` strings (not included), or at `max_length` bytes.
    Bytes that are not valid UTF-8 are decoded with replacement characters.
    """
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    stop_b = [s.encode("utf-8") for s in stops if s]
    out = bytearray()
    for ev in generate_stream(model, start_text, max_new_bytes=max_length, temperature=temperature,
                              top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty,
                              patch_config=patch_config, seed=seed, use_cache=use_cache):
        if ev.byte is None:
            break
        out.append(ev.byte)
        hit = next((s for s in stop_b if out.endswith(s)), None)
        if hit is not None:
            del out[-len(hit):]
            break
    return bytes(out).decode("utf-8", errors="replace")


def greedy_ids(model: BLT, prompt: str | bytes, n: int, patch_config: PatchingConfig | None = None,
               use_cache: bool = True) -> list[int]:
    """Convenience for tests and benchmarks: n greedy ids."""
    return [ev.token_id for ev in generate_stream(model, prompt, n, temperature=0.0,
                                                   patch_config=patch_config, use_cache=use_cache)]


__all__ = ["ByteEvent", "IncrementalState", "generate_stream", "generate_text", "reference_step", "greedy_ids"]
