"""Several samples of one prompt at once, through the batched cached engine (engine.py,
batch.py): one prefill of n copies of the prompt, then one batched step per byte for all n.

    texts = generate_samples(model, "Once upon a time", 4, temperature=0.8, max_new_bytes=64, seed=1)

Each sample stops on its own (EOS, a stop string, `max_new_bytes`); a finished sample is still
fed (byte 0) until every sample is done, so the batch keeps its shape. Unlike `generate_stream`,
generation also ends at the model's context limit (no re-prefill of a batch).
"""

from __future__ import annotations

from typing import Any

import torch

from ..config import PatchingConfig
from ..ids import EOS_ID, OFFSET
from ..nn.model import BLT
from .engine import CachedEngine
from .generation import _prompt_ids, _sampling
from .sampling import SamplingConfig, distribution, sample

__all__ = ["generate_samples"]


def generate_samples(model: BLT, prompt: str | bytes, n: int, sampling: SamplingConfig | None = None, *,
                     patch_config: PatchingConfig | None = None, **overrides: Any) -> list[str]:
    """n continuations of `prompt` sampled together -> their texts (stop strings removed;
    invalid UTF-8 replaced). Arguments as `generate_text`; one generator seeded by `seed`
    draws the samples in order."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    sampling = _sampling(sampling, overrides)
    ids = _prompt_ids(prompt, model.config.max_position_embeddings)
    gen = torch.Generator()
    if sampling.seed is None:
        gen.seed()
    else:
        gen.manual_seed(sampling.seed)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            outs = _sample_rows(CachedEngine(model, patch_config), ids, n, sampling, gen)
    finally:
        model.train(was_training)
    return [bytes(o).decode("utf-8", errors="replace") for o in outs]


def _sample_rows(engine: CachedEngine, ids: list[int], n: int, sampling: SamplingConfig,
                 gen: torch.Generator) -> list[bytearray]:
    out = [bytearray() for _ in range(n)]
    done = [False] * n
    seen = [set(ids) for _ in range(n)]
    step = engine.prefill([ids] * n)
    room = engine.model.config.max_position_embeddings - len(ids)
    for _ in range(min(sampling.max_new_bytes, room)):
        nxt = []
        for b in range(n):
            if done[b]:
                nxt.append(OFFSET)
                continue
            history = torch.tensor(sorted(seen[b])) if sampling.repetition_penalty != 1.0 else None
            tok = sample(distribution(step.next_logits[b], sampling, history), gen)
            seen[b].add(tok)
            nxt.append(tok)
            if tok < OFFSET or tok == EOS_ID:
                done[b] = True
                continue
            out[b].append(tok - OFFSET)
            hit = next((s for s in sampling.stop if out[b].endswith(s)), None)
            if hit is not None:
                del out[b][-len(hit):]
                done[b] = True
        if all(done):
            break
        step = engine.step(nxt)
    return out
