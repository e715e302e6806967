"""Bits per byte along a text, for the inspector's two-models view (F9): each model's total, the
value each colour mode shows per byte, the mean per line or per fixed window that its plot draws,
and the JSON export. Pure Python (no Textual), so it is tested without an app."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

COLOUR_MODES = ("A", "B", "B − A")  # model A's bits, model B's bits, their difference
SPAN_KINDS = ("line", "window")
MAX_WINDOWS = 64  # the window grows (in powers of two) so that a text gives at most this many
MIN_WINDOW = 8


def bits_per_byte(bits: Sequence[float]) -> float:
    """The mean of per-byte bits (NaN for none): a model's bits per byte on the text."""
    return sum(bits) / len(bits) if bits else float("nan")


def differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per byte, B's bits minus A's (negative where B needs fewer)."""
    return [y - x for x, y in zip(a, b, strict=True)]


def mode_values(mode: str, a: Sequence[float] | None, b: Sequence[float] | None) -> list[float] | None:
    """The per-byte values colour mode `mode` shows; None while a model it needs is not scored."""
    if mode == "A":
        return None if a is None else list(a)
    if mode == "B":
        return None if b is None else list(b)
    if mode == "B − A":
        return None if a is None or b is None else differences(a, b)
    raise ValueError(f"unknown colour mode {mode!r}")


def next_of(options: Sequence[str], current: str) -> str:
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


def line_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line; a line's newline byte is counted in the line it ends."""
    spans = []
    start = 0
    while start < len(data):
        nl = data.find(b"\n", start)
        end = len(data) if nl < 0 else nl + 1
        spans.append((start, end))
        start = end
    return spans


def window_size(n: int) -> int:
    """The fixed window for a text of n bytes: a power of two, at least MIN_WINDOW, giving at
    most MAX_WINDOWS windows."""
    size = MIN_WINDOW
    while size * MAX_WINDOWS < n:
        size *= 2
    return size


def window_spans(n: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive windows of `size` bytes (the last one may be shorter)."""
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def span_means(bits: Sequence[float], spans: Sequence[tuple[int, int]]) -> list[float]:
    """The mean bits per byte over each span."""
    return [bits_per_byte(bits[lo:hi]) for lo, hi in spans]


@dataclass(frozen=True)
class Along:
    """A plot's data: x per span (the line number, or the window's first byte) and one series
    of bits per byte per model."""

    kind: str  # "line" or "window"
    xs: list[int]
    series: dict[str, list[float]]
    xlabel: str


def along(data: bytes, series: dict[str, Sequence[float]], kind: str) -> Along:
    """Bits per byte per line (x = 1, 2, ...) or per fixed window (x = its first byte offset)."""
    if kind == "line":
        spans = line_spans(data)
        xs = list(range(1, len(spans) + 1))
        xlabel = "line"
    elif kind == "window":
        size = window_size(len(data))
        spans = window_spans(len(data), size)
        xs = [lo for lo, _hi in spans]
        xlabel = f"byte offset ({size}-byte windows)"
    else:
        raise ValueError(f"unknown span kind {kind!r}")
    return Along(kind, xs, {name: span_means(bits, spans) for name, bits in series.items()}, xlabel)


def totals_line(names: tuple[str, str | None], a: Sequence[float] | None, b: Sequence[float] | None) -> str:
    """'A 2.345 bits/byte · B 1.980 bits/byte · B − A −0.365 bits/byte (B needs 15.6% fewer)';
    a model not scored yet reads '…'."""
    def one(role: str, bits: Sequence[float] | None) -> str:
        return f"{role} {bits_per_byte(bits):.4f} bits/byte" if bits is not None else f"{role} …"

    parts = [one("A", a)]
    if names[1] is not None:
        parts.append(one("B", b))
    if a is not None and b is not None:
        pa, pb = bits_per_byte(a), bits_per_byte(b)
        d = pb - pa
        rel = "" if not pa or not math.isfinite(pa) or abs(d) < 5e-5 else (
            f" (B needs {abs(d) / pa:.1%} {'fewer' if d < 0 else 'more'})")
        parts.append(f"B − A {d:+.4f} bits/byte{rel}")
    return " · ".join(parts)


def two_models_json(data: bytes, models: list[dict], a: Sequence[float], b: Sequence[float] | None) -> dict:
    """The export: the text, each model's record (label, path, ...) with its per-byte bits and
    bits per byte, and, with both, the difference."""
    doc: dict = {"format": "blt-chat two models v1", "bytes": len(data),
                 "text": data.decode("utf-8", errors="replace"), "models": []}
    for role, rec, bits in zip(("A", "B"), models, (a, b), strict=False):
        if bits is not None:
            doc["models"].append({"role": role, **rec, "bits_per_byte": bits_per_byte(bits), "bits": list(bits)})
    if b is not None:
        doc["difference_bits_per_byte"] = bits_per_byte(b) - bits_per_byte(a)
    return doc
