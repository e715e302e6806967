"""The entropy colour scale: one colour per bucket of next-byte entropy, calm blue (the model is
sure) to hot red (it is surprised), shared by `blt generate --show-patches` and the app's
transcript and inspector. Pure data: no terminal library (docs/architecture.md, "File layout")."""

from __future__ import annotations

import math

__all__ = ["BUCKET_HEX", "ENTROPY_MAX", "NO_BUCKET", "N_BUCKETS", "entropy_bucket", "entropy_hex"]

ENTROPY_MAX = 4.0  # nats; everything above is "hot" (a uniform byte distribution is ln 256 = 5.5)
# One colour per bucket, each exactly an xterm-256 colour: a 256-colour terminal shows them
# unchanged (blended colours fell onto a few teals and olives there), and the 16-colour
# downgrade still runs blue -> cyan -> green -> yellow -> red.
BUCKET_HEX = ("#0000d7", "#005fff", "#0087d7", "#00afd7", "#00af87", "#00af00",
              "#5fd700", "#afd700", "#d7d700", "#ffaf00", "#ff5f00", "#d70000")
N_BUCKETS = len(BUCKET_HEX)
NO_BUCKET = -1  # no entropy known (a prompt byte before the first prediction, NaN)


def entropy_bucket(h: float | None) -> int:
    """Entropy in nats -> bucket 0..N_BUCKETS-1, or NO_BUCKET when unknown or not finite."""
    if h is None or not isinstance(h, (int, float)) or not math.isfinite(h):
        return NO_BUCKET
    return max(0, min(N_BUCKETS - 1, int(h / ENTROPY_MAX * N_BUCKETS)))


def entropy_hex(h: float | None) -> str | None:
    """Entropy in nats -> its bucket's colour as "#rrggbb", None when unknown."""
    bucket = entropy_bucket(h)
    return BUCKET_HEX[bucket] if bucket != NO_BUCKET else None
