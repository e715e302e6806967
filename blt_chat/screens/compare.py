"""Compare patchings (the inspector's F6): the inspected text under two to four configurations,
one aligned row each, with patch count, mean patch size, the share of bytes at which the global
model runs and the estimated inference FLOPs per byte, and a histogram of each row's patch
lengths (textual-plotext: axes and ticks, one series per row, a legend line above it). Every change re-patches one row
from the stored entropies (blt_chat/compare.py); the entropy model is never called here."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Input, Select, Static

from ..compare import (
    MAX_ROWS,
    MIN_ROWS,
    Comparison,
    RowStats,
    config_from_values,
    describe,
    length_histogram,
    values_from_config,
)
from ..files import write_text_or_report
from ..keys import COMPARE_KEYS, bindings
from ..render import visible_text
from ..service import Analysis, ModelService
from ..settings import export_dir
from ..widgets.key_views import KeyFooter
from ..widgets.patch_controls import patch_controls, read_controls, set_controls
from ..widgets.plot import plot_widget, plt_of
from .closing import close

ROWS_MAX_BYTES = 16384
# two shades per row, so patches alternate within a row and rows differ from each other
ROW_SHADES = [("#1c2c44", "#2f4a70"), ("#2c1c3c", "#4e3070"), ("#1c3828", "#2f6040"), ("#3c2c1c", "#6a4a28")]
START_FG = "#ff5fd7"
# each row's bars: the hue of its shades above, bright enough to read on the plot's background
ROW_BARS = [(95, 135, 215), (175, 110, 230), (95, 190, 120), (215, 150, 80)]


def fmt_flops(x: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f}"


def row_colour(i: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*ROW_BARS[i % len(ROW_BARS)])


def table_cells(i: int, row: RowStats) -> tuple:
    return (Text(str(i + 1), style=f"bold {row_colour(i)}"), describe(row.config), str(row.n_patches), f"{row.mean_patch_size:.2f}",
            f"{100 * row.global_share:.1f}%", fmt_flops(row.flops_per_byte))


def byte_cells(data: bytes) -> list[str]:
    """One cell per byte (so rows align): ASCII as itself, anything else as a dot."""
    out = []
    for b in data:
        ch = visible_text(bytes((b,))) if b < 0x80 else "·"
        out.append(ch if len(ch) == 1 and ch != "\n" else "·")
    return out


def aligned_rows(comparison: Comparison, selected: int, width: int = 0, max_bytes: int = ROWS_MAX_BYTES) -> Text:
    """Blocks of `width` bytes (0: one block): a ruler, then each configuration's patches over
    the same bytes, one line each; patches alternate in shade, a patch's first byte is bold pink."""
    data = comparison.analysis.data[:max_bytes]
    cells = byte_cells(data)
    span = max(10, width - 3) if width else max(1, len(data))
    t = Text(no_wrap=True, overflow="crop")
    for lo in range(0, len(data), span):
        hi = min(len(data), lo + span)
        if lo:
            t.append("\n")
        ruler = "".join(f"{i:<10d}" for i in range(lo - lo % 10, hi, 10))[lo % 10:][:hi - lo]
        t.append("   " + ruler + "\n", style="dim")
        for r, row in enumerate(comparison.rows):
            t.append(f"{'▶' if r == selected else ' '}{r + 1} ", style="bold" if r == selected else "dim")
            shades = ROW_SHADES[r % len(ROW_SHADES)]
            p = row.patching
            for i in range(lo, hi):
                bg = shades[p.patch_of[i] % 2]
                fg, bold = (START_FG, True) if p.starts[i] else ("#e0e0e0", False)
                t.append(cells[i], style=Style(bgcolor=bg, color=fg, bold=bold))
            t.append("\n")
    if len(comparison.analysis.data) > len(data):
        t.append(f"   … the rows show the first {len(data)} of {len(comparison.analysis.data)} bytes", style="dim")
    return t


def plot_legend(rows: list[RowStats], width: int) -> Text:
    """What the plot shows and each row's colour, named in full where the line holds them."""
    t = Text("Patches per length (bytes): ", style="bold", no_wrap=True, overflow="ellipsis")
    names = [f"#{i + 1} {describe(r.config)}" for i, r in enumerate(rows)]
    if len(t) + sum(len(n) + 5 for n in names) > width:
        names = [f"#{i + 1}" for i in range(len(rows))]  # the table above names them in full
    for i, name in enumerate(names):
        t.append("██ ", style=row_colour(i))
        t.append(name + "  ")
    return t


class CompareScreen(Screen):
    CSS_PATH = "compare.tcss"
    BINDINGS = bindings(COMPARE_KEYS)

    def __init__(self, service: ModelService, analysis: Analysis, configs: list) -> None:
        super().__init__()
        self.service = service
        self.comparison = Comparison(analysis, configs, service.model.flops_per_byte)
        self.selected = 0
        self.last_export: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="cmp-title")
        scheme, values = values_from_config(self.comparison.rows[0].config)
        yield from patch_controls("cmp", scheme, values)
        yield Static("", id="cmp-error")
        yield DataTable(id="cmp-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="cmp-plot-legend")
        yield plot_widget("cmp-plot")
        with VerticalScroll(id="cmp-rows-scroll"):
            yield Static("", id="cmp-rows")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        table.add_columns("#", "configuration", "patches", "mean size", "global runs", "FLOPs/byte")
        self._render_all()
        self.call_after_refresh(self._render_plot)  # again at the plot's laid-out width
        table.focus()

    # ---------------------------------------------------------- rendering
    def _render_all(self) -> None:
        table = self.query_one("#cmp-table", DataTable)
        table.clear()
        for i, row in enumerate(self.comparison.rows):
            table.add_row(*table_cells(i, row))
        table.move_cursor(row=self.selected, animate=False)
        self._render_rows()
        self._render_plot()

    def _render_plot(self) -> None:
        """Grouped bars of patch lengths, one series per row (as many bins as the width holds).
        The legend is a line above the plot, not plotext's box, which hides the bars it covers."""
        widget = self.query_one("#cmp-plot")
        rows = self.comparison.rows
        self.query_one("#cmp-plot-legend", Static).update(plot_legend(rows, widget.size.width))
        plt = plt_of(widget)
        if plt is None:
            return
        hist = length_histogram(rows, max_bins=max(4, (widget.size.width - 10) // (len(rows) + 1)))
        plt.multiple_bar(hist.labels, hist.counts, color=ROW_BARS[:len(rows)])
        top = max(max(c) for c in hist.counts)
        ticks = sorted({0, top // 2, top})
        plt.yticks(ticks, [str(t) for t in ticks])
        plt.ylim(0, top)
        widget.refresh()

    def _render_rows(self) -> None:
        n = len(self.comparison.analysis.data)
        title = Text()
        title.append(f"Compare patchings · {n} bytes", style="bold")
        title.append(f" · {len(self.comparison.rows)} of {MAX_ROWS} configurations; editing #{self.selected + 1}"
                     " · global runs = share of bytes where the global model runs (once per patch)")
        if self.service.random_weights:
            title.append(" · model: random weights (untrained)", style="#ff8700")
        self.query_one("#cmp-title", Static).update(title)
        width = self.query_one("#cmp-rows-scroll").scrollable_content_region.width
        self.query_one("#cmp-rows", Static).update(aligned_rows(self.comparison, self.selected, width))

    def on_resize(self) -> None:
        self._render_rows()
        self.call_after_refresh(self._render_plot)  # its bins follow the plot's new width

    def show_error(self, text: str) -> None:
        err = self.query_one("#cmp-error", Static)
        err.update(Text(text))
        err.set_class(bool(text), "-shown")

    @property
    def error_text(self) -> str:
        return str(self.query_one("#cmp-error", Static).render())

    # ---------------------------------------------------------- selection and edits
    @on(DataTable.RowHighlighted, "#cmp-table")
    def _row_highlighted(self) -> None:
        # the table's cursor now, not the event's row: a rebuild posts a highlight of row 0 first
        row = self.query_one("#cmp-table", DataTable).cursor_row
        if row == self.selected or not 0 <= row < len(self.comparison.rows):
            return
        self.selected = row
        self.show_error("")
        set_controls(self, "cmp", self.comparison.rows[row].config)
        self._render_rows()

    @on(Select.Changed, "#cmp-scheme")
    @on(Input.Changed, "#cmp-controls Input")
    def _controls_changed(self) -> None:
        try:
            cfg = config_from_values(self.service.config.patching, *read_controls(self, "cmp"))
        except ValueError as e:
            self.show_error(f"#{self.selected + 1} not re-patched: {e}")
            return
        self.show_error("")
        if self.comparison.edit(self.selected, cfg):
            self._render_all()

    def action_add_row(self) -> None:
        if not self.comparison.add(self.comparison.rows[self.selected].config):
            self.notify(f"At most {MAX_ROWS} configurations.", severity="warning")
            return
        self.selected = len(self.comparison.rows) - 1
        self._render_all()
        self.notify(f"Added #{self.selected + 1}, a copy of the selected one: edit it above.")

    def action_remove_row(self) -> None:
        if not self.comparison.remove(self.selected):
            self.notify(f"At least {MIN_ROWS} configurations stay.", severity="warning")
            return
        self.selected = min(self.selected, len(self.comparison.rows) - 1)
        set_controls(self, "cmp", self.comparison.rows[self.selected].config)
        self._render_all()

    def action_export_json(self) -> None:
        data = self.comparison.analysis.data
        path = export_dir() / f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json"
        doc = {"format": "blt-chat patch comparison v1", "bytes": len(data),
               "text": data.decode("utf-8", errors="replace"), "configurations": self.comparison.as_json()}
        if write_text_or_report(self.app, path, json.dumps(doc, indent=1, ensure_ascii=False), "the comparison"):
            self.last_export = path
            self.notify(f"Saved the comparison to {path}", title="Exported JSON")

    def action_close(self) -> None:
        close(self)
