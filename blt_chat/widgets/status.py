"""Live status: model, device, parameters; bytes/s, bytes, patches, mean patch size; an
entropy-vs-threshold sparkline of the latest bytes; the entropy colour legend."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from ..render import entropy_color, legend_segments

SPARK = "▁▂▃▄▅▆▇█"
SPARK_LEN = 32


@dataclass
class GenStats:
    """Counters for the answer being generated (or the last one)."""

    bytes: int = 0
    patches: int = 0
    started: float | None = None
    last: float | None = None
    threshold: float | None = None
    scheme: str = ""
    state: str = "idle"
    recent: deque = field(default_factory=lambda: deque(maxlen=SPARK_LEN))

    def reset(self, now: float, threshold: float | None, scheme: str) -> None:
        self.bytes = 0
        self.patches = 0
        self.started = now
        self.last = now
        self.threshold = threshold
        self.scheme = scheme
        self.state = "generating"
        self.recent.clear()

    def add(self, entropy: float, patch_start: bool, now: float) -> None:
        self.bytes += 1
        if patch_start:
            self.patches += 1
        self.recent.append((entropy, patch_start))
        self.last = now

    @property
    def rate(self) -> float:
        if self.started is None or self.last is None or self.last <= self.started:
            return 0.0
        return self.bytes / (self.last - self.started)

    @property
    def mean_patch(self) -> float:
        return self.bytes / self.patches if self.patches else 0.0


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 2;
        background: $panel;
        color: $text;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.model_text = ""
        self.stats = GenStats()

    def set_model(self, name: str, device: str, params: str, random_weights: bool) -> None:
        self.model_text = f"{name} · {device} · {params} params"
        self.random_weights = random_weights
        self.refresh_status()

    def refresh_status(self) -> None:
        s = self.stats
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        warn = getattr(self, "random_weights", False)
        t.append("● ", style=Style(color="#ff8700" if warn else "#5fd75f"))
        t.append(self.model_text, style=Style(bold=True))
        if s.scheme:
            t.append(f"  {s.scheme} patching", style=Style(dim=True))
        t.append("  ")
        state_style = {"generating": "bold #ffd75f", "stopped": "#ff5f5f", "error": "bold #ff5f5f"}
        t.append(s.state, style=state_style.get(s.state, "dim"))
        t.append("  ")
        for text, style in legend_segments():
            t.append(text, style=style)
        t.append("\n")
        t.append(f"{s.rate:7.1f} B/s", style="bold")
        t.append(f" · {s.bytes} bytes · {s.patches} patches · {s.mean_patch:.2f} B/patch  ")
        t.append_text(self.sparkline())
        self.update(t)

    def sparkline(self) -> Text:
        s = self.stats
        t = Text()
        th = s.threshold
        label = f"H vs θ={th:.2f} " if th is not None and math.isfinite(th) else "H "
        t.append(label, style="dim")
        vals = list(s.recent)
        pad = SPARK_LEN - len(vals)
        t.append("·" * pad, style="dim")
        top = max([v for v, _ in vals if math.isfinite(v)] + [th or 0.0, 1.0])
        for v, start in vals:
            if not math.isfinite(v):
                t.append(" ")
                continue
            level = min(len(SPARK) - 1, max(0, int(v / top * (len(SPARK) - 1) + 0.5)))
            over = th is not None and v > th
            color = entropy_color(v)
            style = Style(color=color.rich_color if color else None, bold=over, underline=start)
            t.append(SPARK[level], style=style)
        return t
