"""The inspector's entropy plot as a Line-API view: the plot (inspect_view.plot_text, up to 4096
columns) is laid out into strips once per text and patching; scrolling crops them, and the byte
cursor restyles one column of the cached strips. Moving the cursor over a long text used to
rebuild and re-render the whole plot on every key (about 1.3 s for 4096 bytes here)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..inspect_view import GUTTER

CURSOR_COLUMN = Style(bgcolor="#4e4e6e")
CURSOR_BYTE = Style(bgcolor="#ffd75f", color="#000000", bold=True)
CURSOR_MARK = Style(color="#ffd75f", bold=True)


def restyle_cell(strip: Strip, x: int, change) -> Strip:
    """`strip` with the one cell at column x replaced by change(segment) (same width)."""
    if x < 0 or x >= strip.cell_length:
        return strip
    parts = strip.divide([x, x + 1, strip.cell_length])
    left, cell, right = parts[0], parts[1], parts[2] if len(parts) > 2 else Strip([])
    segments = list(cell)
    if not segments:
        return strip
    return Strip([*left, change(segments[0]), *right], strip.cell_length)


class EntropyPlot(ScrollView, can_focus=True):
    """Shows a plot Text; `set_cursor(i, is_start)` highlights byte i's column (None: none)."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self._base: list[Strip] = []
        self._shown: list[Strip] = []
        self.rows = 0  # bar rows; the byte row and the mark row follow them
        self.cursor: int | None = None

    def show(self, plot: Text, rows: int) -> None:
        """Lay out a new plot (bars in `rows` rows, then bytes, then patch marks)."""
        console = self.app.console
        width = max(1, max((line.cell_len for line in plot.split("\n")), default=1))
        options = console.options.update(width=width, no_wrap=True, overflow="crop")
        self._base = [Strip(line) for line in console.render_lines(plot, options, pad=False)]
        self.rows = rows
        self.virtual_size = Size(width, len(self._base))
        self._apply_cursor(self.cursor, None)

    def set_cursor(self, i: int | None, is_start: bool = False) -> None:
        """Highlight byte i (the column, its byte, an arrow under it unless a patch starts)."""
        self._apply_cursor(i, is_start)

    def _apply_cursor(self, i: int | None, is_start: bool | None) -> None:
        self.cursor = i
        shown = list(self._base)
        if i is not None and shown:
            x = GUTTER + i
            for r in range(min(self.rows, len(shown))):
                shown[r] = restyle_cell(shown[r], x, lambda s: Segment(s.text, (s.style or Style()) + CURSOR_COLUMN))
            if self.rows < len(shown):
                shown[self.rows] = restyle_cell(shown[self.rows], x, lambda s: Segment(s.text, CURSOR_BYTE))
            if self.rows + 1 < len(shown) and is_start is False:
                shown[self.rows + 1] = restyle_cell(shown[self.rows + 1], x, lambda s: Segment("↑", CURSOR_MARK))
        self._shown = shown
        self.refresh()

    def scroll_to_column(self, x: int) -> None:
        """Keep content column x in view (centred when it was out of view)."""
        width = self.scrollable_content_region.width
        if not self.scroll_x <= x < self.scroll_x + width - 1:
            self.scroll_to(x=max(0, x - width // 2), animate=False)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if not 0 <= index < len(self._shown):
            return Strip.blank(width, self.rich_style)
        return self._shown[index].crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_style(
            self.rich_style)
