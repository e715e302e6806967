"""Turning next-id logits into a sampled id: temperature, top-k, top-p, repetition penalty."""

from __future__ import annotations

import torch

from ..guards import is_int
from ..guards import is_number as _number
from ..ids import BOE_ID, BOS_ID, PAD_ID


class NonFiniteLogitsError(RuntimeError):
    """The model produced NaN or infinite logits (corrupt or diverged weights)."""


def check_finite_logits(logits: torch.Tensor) -> None:
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteLogitsError("the model produced non-finite logits (NaN or infinity); "
                                   "its weights are corrupt or diverged")


def check_sampling(temperature: float = 1.0, top_k: int = 0, top_p: float | None = 1.0,
                   repetition_penalty: float = 1.0) -> None:
    """Raise ValueError naming the first parameter that is not finite and in range."""
    if not (_number(temperature) and temperature >= 0):
        raise ValueError(f"temperature: must be a finite number >= 0, got {temperature!r}")
    if not (is_int(top_k) and top_k >= 0):
        raise ValueError(f"top_k: must be an integer >= 0, got {top_k!r}")
    if top_p is not None and not (_number(top_p) and 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p: must be in (0, 1], got {top_p!r}")
    if not (_number(repetition_penalty) and repetition_penalty > 0):
        raise ValueError(f"repetition_penalty: must be a finite number > 0, got {repetition_penalty!r}")


def sampling_distribution(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float | None = 1.0,
    repetition_penalty: float = 1.0,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """logits: [V] -> probabilities [V] (float32) after all the filters.

    temperature 0 means greedy: all mass on the arg-max. Special ids that never appear in
    text (BOE, BOS, PAD) get no mass; EOS stays allowed so generation can end.
    """
    check_sampling(temperature, top_k, top_p, repetition_penalty)
    check_finite_logits(logits)
    x = logits.detach().float().clone()
    x[[BOE_ID, BOS_ID, PAD_ID]] = float("-inf")
    if repetition_penalty != 1.0 and history is not None and history.numel() > 0:
        seen = torch.unique(history.to(x.device))
        vals = x[seen]
        x[seen] = torch.where(vals > 0, vals / repetition_penalty, vals * repetition_penalty)
    if temperature == 0:
        out = torch.zeros_like(x)
        out[int(torch.argmax(x))] = 1.0
        return out
    x = x / temperature
    if top_k and top_k < x.numel():
        kth = torch.topk(x, top_k).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    probs = torch.softmax(x, dim=-1)
    if top_p is not None and top_p < 1.0:
        sp, order = torch.sort(probs, descending=True)
        cum = torch.cumsum(sp, 0)
        drop = (cum - sp) >= top_p  # keep the smallest prefix whose mass reaches top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sp)
        probs = probs / probs.sum()
    return probs


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    if int((probs > 0).sum()) == 1:
        return int(torch.argmax(probs))
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
