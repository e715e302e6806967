"""Turning next-id logits into a sampled id: temperature, top-k, top-p, repetition penalty.

`SamplingConfig` holds every sampling choice and is the one place they are validated: the
library, the `blt generate` flags and the app's settings all build one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..guards import is_int
from ..guards import is_number as _number
from ..ids import BOE_ID, BOS_ID, PAD_ID

__all__ = ["NonFiniteLogitsError", "SamplingConfig", "check_finite_logits", "distribution", "sample",
           "sampling_distribution"]


class NonFiniteLogitsError(RuntimeError):
    """The model produced NaN or infinite logits (corrupt or diverged weights)."""


def check_finite_logits(logits: torch.Tensor) -> None:
    if not bool(torch.isfinite(logits).all()):
        raise NonFiniteLogitsError("the model produced non-finite logits (NaN or infinity); "
                                   "its weights are corrupt or diverged")


def _stop_bytes(stop: Any) -> tuple[bytes, ...]:
    """One stop string or a list of them -> a tuple of non-empty byte strings. A str is
    encoded as UTF-8 with surrogateescape, so a str written by `to_dict` gives its bytes back."""
    items = [stop] if isinstance(stop, (str, bytes, bytearray)) else stop
    if not isinstance(items, Iterable):
        raise ValueError(f"stop: expected a string, bytes or a list of them, got {type(stop).__name__}")
    out = []
    for s in items:
        if isinstance(s, str):
            s = s.encode("utf-8", errors="surrogateescape")
        if not isinstance(s, (bytes, bytearray)) or not s:
            raise ValueError(f"stop: each stop string must be non-empty str or bytes, got {s!r}")
        out.append(bytes(s))
    return tuple(out)


@dataclass(frozen=True)
class SamplingConfig:
    """How the next byte is chosen, and when generation ends.

    temperature: 0 means greedy (all mass on the arg-max).
    top_k: keep the k most likely ids (0: off). top_p: keep the smallest set of ids whose
    probability reaches top_p (1: off). repetition_penalty: divides the positive logits (and
    multiplies the negative ones) of ids already in the context (1: off).
    seed: None draws a fresh seed; an integer makes sampling reproducible.
    max_new_bytes: the most bytes generated (EOS and stop strings end generation earlier).
    stop: stop strings (str or bytes, one or a list); kept as a tuple of bytes. Generation
    stops after the byte that completes one.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    max_new_bytes: int = 256
    stop: tuple[bytes, ...] = field(default=())

    def __post_init__(self) -> None:
        """Raise ValueError naming the first field that is not finite and in range."""
        if not (_number(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature: must be a finite number >= 0, got {self.temperature!r}")
        if not (is_int(self.top_k) and self.top_k >= 0):
            raise ValueError(f"top_k: must be an integer >= 0, got {self.top_k!r}")
        if not (_number(self.top_p) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p: must be a number in (0, 1], got {self.top_p!r}")
        if not (_number(self.repetition_penalty) and self.repetition_penalty > 0):
            raise ValueError(f"repetition_penalty: must be a finite number > 0, got {self.repetition_penalty!r}")
        if self.seed is not None and not (is_int(self.seed) and 0 <= self.seed < 2**64):
            raise ValueError(f"seed: must be an integer in [0, 2**64) or None, got {self.seed!r}")
        if not (is_int(self.max_new_bytes) and self.max_new_bytes >= 0):
            raise ValueError(f"max_new_bytes: must be an integer >= 0, got {self.max_new_bytes!r}")
        object.__setattr__(self, "stop", _stop_bytes(self.stop))  # frozen: normalise once, here

    def replace(self, **changes: Any) -> SamplingConfig:
        """A copy with `changes` (validated like a new config; unknown names are refused)."""
        _refuse_unknown(changes, "sampling")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: stop strings as str (bytes that are not UTF-8 as surrogate escapes)."""
        d = dataclasses.asdict(self)
        d["stop"] = [s.decode("utf-8", errors="surrogateescape") for s in self.stop]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        if not isinstance(data, dict):
            raise ValueError(f"SamplingConfig: expected a JSON object, got {type(data).__name__}")
        _refuse_unknown(data, "SamplingConfig")
        return cls(**data)


_FIELDS = tuple(f.name for f in dataclasses.fields(SamplingConfig))


def _refuse_unknown(data: dict[str, Any], what: str) -> None:
    unknown = sorted(set(data) - set(_FIELDS), key=str)
    if unknown:
        raise ValueError(f"{what}: unknown field {unknown[0]!r} (known fields: {', '.join(sorted(_FIELDS))})")


def distribution(logits: torch.Tensor, sampling: SamplingConfig, history: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """logits: [V] -> probabilities [V] (float32) after all the filters of `sampling`.

    Special ids that never appear in text (BOE, BOS, PAD) get no mass; EOS stays allowed so
    generation can end. `history`: ids the repetition penalty applies to.
    """
    check_finite_logits(logits)
    x = logits.detach().float().clone()
    x[[BOE_ID, BOS_ID, PAD_ID]] = float("-inf")
    rep = sampling.repetition_penalty
    if rep != 1.0 and history is not None and history.numel() > 0:
        seen = torch.unique(history.to(x.device))
        vals = x[seen]
        x[seen] = torch.where(vals > 0, vals / rep, vals * rep)
    if sampling.temperature == 0:
        out = torch.zeros_like(x)
        out[int(torch.argmax(x))] = 1.0
        return out
    x = x / sampling.temperature
    if sampling.top_k and sampling.top_k < x.numel():
        kth = torch.topk(x, sampling.top_k).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    probs = torch.softmax(x, dim=-1)
    if sampling.top_p < 1.0:
        sp, order = torch.sort(probs, descending=True)
        cum = torch.cumsum(sp, 0)
        drop = (cum - sp) >= sampling.top_p  # keep the smallest prefix whose mass reaches top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sp)
        probs = probs / probs.sum()
    return probs


def sampling_distribution(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """`distribution` with the filters given one by one (validated by SamplingConfig)."""
    cfg = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty)
    return distribution(logits, cfg, history)


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    if int((probs > 0).sum()) == 1:
        return int(torch.argmax(probs))
    return int(torch.multinomial(probs.cpu(), 1, generator=generator).item())
