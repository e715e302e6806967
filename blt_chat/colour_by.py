"""Colour by: what a byte's background shows in the inspector. Pure logic (no Textual).

- entropy: the entropy model's next-byte entropy that decides patches (nats; the app's scale);
- surprisal: the BLT's surprisal of the actual byte, -log2 p (bits);
- gap: surprisal minus that entropy in bits: red where the byte surprised the BLT more than the
  entropy model expected, blue where it surprised it less.

All three use the one colour scale (blt_model.entropy_scale's buckets), over their own range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from blt_model.entropy_scale import BUCKET_HEX, ENTROPY_MAX, N_BUCKETS, NO_BUCKET

MODES = ("entropy", "surprisal", "gap")
LN2 = math.log(2)


@dataclass(frozen=True)
class Scale:
    mode: str
    unit: str
    lo: float
    hi: float
    meaning: str

    def bucket(self, v: float | None) -> int:
        """Value -> bucket 0..N_BUCKETS-1 (clamped), NO_BUCKET when unknown or not finite."""
        if v is None or not math.isfinite(v):
            return NO_BUCKET
        return max(0, min(N_BUCKETS - 1, int((v - self.lo) / (self.hi - self.lo) * N_BUCKETS)))

    def hex(self, v: float | None) -> str | None:
        b = self.bucket(v)
        return BUCKET_HEX[b] if b != NO_BUCKET else None

    def legend(self) -> Text:
        t = Text()
        t.append(f"colour: {self.mode} ", style="bold")
        t.append(f"{self.lo:g} ", style="dim")
        for c in BUCKET_HEX:
            t.append(" ", style=Style(bgcolor=c))
        t.append(f" {self.hi:g}+ {self.unit}", style="dim")
        return t


SCALES = {
    "entropy": Scale("entropy", "nats", 0.0, ENTROPY_MAX, "the entropy model's entropy, which decides patches"),
    "surprisal": Scale("surprisal", "bits", 0.0, 8.0, "the BLT's surprisal of the actual byte, −log2 p"),
    "gap": Scale("gap", "bits", -4.0, 4.0, "surprisal − entropy: red = more surprised than expected"),
}
# Two models, one text (the inspector's F9): B's bits minus A's for each byte, diverging on the one
# palette as the gap does (0 in the middle).
DIFFERENCE = Scale("B − A", "bits", -4.0, 4.0, "blue = model B needs fewer bits than A, red = more")


def next_mode(mode: str) -> str:
    return MODES[(MODES.index(mode) + 1) % len(MODES)] if mode in MODES else MODES[0]


def byte_values(mode: str, entropies: list[float], surprisals: list[float] | None) -> list[float] | None:
    """Per byte, the value `mode` colours by; None when it needs surprisals not computed yet.
    entropies: nats (the deciding entropy of each byte); surprisals: bits."""
    if mode == "entropy":
        return list(entropies)
    if surprisals is None:
        return None
    if mode == "surprisal":
        return list(surprisals)
    return [s - h / LN2 for s, h in zip(surprisals, entropies, strict=True)]
