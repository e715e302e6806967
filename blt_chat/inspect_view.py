"""What the patch inspector draws, without Textual: the entropy plot (the BLT paper's Figure 4 in
the terminal, as rich Text) and the JSON export of the patches."""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text

from .render import entropy_color, visible_text
from .service import Analysis, Patching

PLOT_ROWS = 10
PLOT_MAX_BYTES = 4096
GUTTER = 8
BARS = " ▁▂▃▄▅▆▇█"


def plot_text(patching: Patching, threshold: float | None, data: bytes, rows: int = PLOT_ROWS) -> Text:
    """Entropy per byte as bars; threshold as a line; patch starts marked below the axis (the
    byte cursor is drawn over it by widgets/entropy_plot.py)."""
    n = min(len(patching.entropies), PLOT_MAX_BYTES)
    ents = [h if math.isfinite(h) else 0.0 for h in patching.entropies[:n]]
    top = max([4.0, threshold or 0.0] + ents)
    top = math.ceil(top * 2) / 2
    th_row = None
    if threshold is not None and math.isfinite(threshold):
        th_row = rows - 1 - min(rows - 1, int(threshold / top * rows))
    line_style = Style(color="#ff5f5f")
    start_bg = Style(bgcolor="#3a2a44")
    t = Text(no_wrap=True, overflow="crop")
    heights = [round(h / top * rows * 8) for h in ents]
    colors = [entropy_color(h) for h in ents]
    for r in range(rows):
        if r == 0:
            label = f"{top:5.1f} ┤"
        elif r == th_row:
            label = f"θ{threshold:4.2f} ┤"
        elif r == rows - 1:
            label = "  0.0 ┤"
        else:
            label = "      │"
        t.append(label.rjust(GUTTER - 1) + " ", style="dim")
        from_bottom = rows - 1 - r
        for i in range(n):
            fill = max(0, min(8, heights[i] - from_bottom * 8))
            start = patching.starts[i]
            col_bg = start_bg if start else None
            if fill == 0 and r == th_row:
                t.append("─", style=line_style + col_bg if col_bg else line_style)
                continue
            c = colors[i]
            st = Style(color=c.rich_color if c else None)
            if col_bg:
                st = st + col_bg
            t.append(BARS[fill], style=st)
        t.append("\n")
    # the bytes themselves, shaded per patch
    t.append(" " * (GUTTER - 2) + "└─", style="dim")
    text_cells = []
    for i in range(n):
        ch = visible_text(data[i:i + 1]) if data[i] < 0x80 else "·"
        text_cells.append(ch if len(ch) == 1 and ch not in "\n" else "·")
    for i, ch in enumerate(text_cells):
        shade = "#2e2e3e" if patching.patch_of[i] % 2 else "#1c1c28"
        t.append(ch, style=Style(bgcolor=shade, color="#e0e0e0"))
    t.append("\n")
    t.append(" " * GUTTER)
    for i in range(n):
        t.append("▲" if patching.starts[i] else " ", style=Style(color="#ff5fd7", bold=True))
    if len(patching.entropies) > n:
        t.append(f"  … plot shows the first {n} of {len(patching.entropies)} bytes", style="dim")
    return t


def patches_json(analysis: Analysis, patching: Patching) -> dict:
    data = analysis.data
    cfg = patching.config
    return {
        "format": "blt-chat patches v1",
        "bytes": len(data),
        "patch_config": cfg.to_dict() if cfg is not None else None,
        "n_patches": patching.n_patches,
        "mean_patch_size": patching.mean_patch_size,
        "entropies": [h if math.isfinite(h) else None for h in patching.entropies],
        "patches": [
            {
                "index": p["index"], "start": p["start"], "length": p["length"],
                "text": data[p["start"]:p["start"] + p["length"]].decode("utf-8", errors="replace"),
                "bytes_hex": data[p["start"]:p["start"] + p["length"]].hex(),
                "mean_entropy": p["mean_entropy"] if math.isfinite(p["mean_entropy"]) else None,
            }
            for p in patching.patches
        ],
    }


def size_line(compressed: int, coded: int, n_bytes: int, xz_bits_per_byte: float) -> str:
    """"N bytes with this model, x bpb; xz M bytes" (xz: lzma -9e, as `blt eval` reports it),
    then the range-coded bytes alone: a short text's container is mostly its header."""
    xz = round(xz_bits_per_byte * n_bytes / 8)
    return (f"{compressed} bytes with this model, {8 * compressed / n_bytes:.2f} bpb; xz {xz} bytes"
            f" (coded alone {coded} bytes, {8 * coded / n_bytes:.2f} bpb)")
