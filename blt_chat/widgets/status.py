"""Live status: model, device, parameters, state; bytes/s, bytes, patches, mean patch size; an
entropy sparkline of the latest bytes; the entropy colour legend.

Everything shown is a reactive attribute (bound to the chat screen's with `data_bind`), so the
bar repaints itself when the state changes. The layout adapts to the width: the legend and the
counters are never cut; the model name is shortened first, then the sparkline."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ..render import entropy_color, legend_segments

SPARK = "▁▂▃▄▅▆▇█"
SPARK_LEN = 32
SPARK_MIN = 6
STATE_STYLES = {"generating": "bold #ffd75f", "stopped": "#ff5f5f", "error": "bold #ff5f5f",
                "loading model": "bold #ffd75f"}


@dataclass(frozen=True)
class StatusInfo:
    """A snapshot of the answer being generated (or the last one): what the bar shows."""

    state: str = "idle"
    scheme: str = ""
    threshold: float | None = None
    rate: float = 0.0
    bytes: int = 0
    patches: int = 0
    recent: tuple[tuple[float, bool], ...] = ()

    @property
    def mean_patch(self) -> float:
        return self.bytes / self.patches if self.patches else 0.0


@dataclass
class GenStats:
    """Counters for the answer being generated; `snapshot()` gives the reactive StatusInfo."""

    bytes: int = 0
    patches: int = 0
    started: float | None = None
    last: float | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=SPARK_LEN))

    def reset(self, now: float | None = None) -> None:
        self.bytes = self.patches = 0
        self.started = self.last = now
        self.recent.clear()

    def add(self, entropy: float, patch_start: bool, now: float) -> None:
        self.bytes += 1
        self.patches += bool(patch_start)
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

    def snapshot(self, state: str, scheme: str, threshold: float | None) -> StatusInfo:
        return StatusInfo(state=state, scheme=scheme, threshold=threshold, rate=self.rate,
                          bytes=self.bytes, patches=self.patches, recent=tuple(self.recent))


def legend_text() -> Text:
    t = Text()
    for text, style in legend_segments():
        t.append(text, style=style)
    return t


def sparkline(recent: tuple[tuple[float, bool], ...], threshold: float | None, length: int) -> Text:
    """The last `length` entropies as bars (bold above the threshold, underlined at patch starts)."""
    t = Text()
    vals = list(recent)[-length:]
    t.append("·" * (length - len(vals)), style="dim")
    top = max([v for v, _ in vals if math.isfinite(v)] + [threshold or 0.0, 1.0])
    for v, start in vals:
        if not math.isfinite(v):
            t.append(" ")
            continue
        level = min(len(SPARK) - 1, max(0, int(v / top * (len(SPARK) - 1) + 0.5)))
        color = entropy_color(v)
        t.append(SPARK[level], style=Style(color=color.rich_color if color else None,
                                           bold=threshold is not None and v > threshold,
                                           underline=start))
    return t


class StatusBar(Widget):
    model_label: reactive[str] = reactive("")
    random_weights: reactive[bool] = reactive(False)
    info: reactive[StatusInfo] = reactive(StatusInfo)

    def render(self) -> Text:
        width = max(20, self.size.width)
        return self.line_one(width) + Text("\n") + self.line_two(width)

    def line_one(self, width: int) -> Text:
        info = self.info
        legend = legend_text()
        state = Text(f"  {info.state}  ", style=STATE_STYLES.get(info.state, "dim"))
        room = width - 2 - state.cell_len - legend.cell_len
        model = Text(self.model_label, style="bold", no_wrap=True, overflow="ellipsis")
        if room < 4:  # a very narrow bar: the legend goes first
            legend, room = Text(), width - 2 - state.cell_len
        model.truncate(max(1, room), overflow="ellipsis")
        t = Text("● ", style=Style(color="#ff8700" if self.random_weights else "#5fd75f"))
        return t + model + state + legend

    def line_two(self, width: int) -> Text:
        info = self.info
        t = Text(f"{info.rate:6.1f} B/s", style="bold")
        t.append(f" · {info.bytes} bytes · {info.patches} patches · {info.mean_patch:.2f} B/patch")
        th = info.threshold if info.threshold is not None and math.isfinite(info.threshold) else None
        label = f"  {info.scheme}" + (f" θ={th:.2f}" if th is not None else "") + " "
        room = width - t.cell_len - cell_len(label)
        if room >= SPARK_MIN:
            t.append(label, style="dim")
            t.append_text(sparkline(info.recent, th, min(SPARK_LEN, room)))
        return t
