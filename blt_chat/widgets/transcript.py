"""The chat transcript: a Line-API ScrollView that absorbs a byte stream cheaply.

Incoming bytes are queued by `feed()` and laid out by `flush()` (the app calls it at ~25 Hz).
Layout is incremental: new glyphs are appended to the last visual line (character wrap), only
the lines that changed lose their cached Strip, and `refresh_lines` repaints only those. The
cost of one flush depends on the bytes in it, not on the length of the transcript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..render import (
    KIND_MARK,
    KIND_TEXT,
    NO_BUCKET,
    ByteLike,
    Glyph,
    GlyphDecoder,
    StyleBook,
    text_glyphs,
)
from .transcript_cursor import TranscriptCursor

CURSOR_STYLE = Style(reverse=True, bold=True, underline=True)
MAX_WORD = 24  # words up to this many glyphs wrap whole; longer ones are cut
ROLE_USER = "user"
ROLE_ASSISTANT = "assistant"
ROLE_INFO = "info"



class _Paragraph:
    """A run of glyphs up to a newline, with a style role for plain text."""

    __slots__ = ("glyphs", "role")

    def __init__(self, role: str) -> None:
        self.glyphs: list[Glyph] = []
        self.role = role


class _VLine:
    __slots__ = ("glyphs", "width", "role")

    def __init__(self, role: str) -> None:
        self.glyphs: list[Glyph] = []
        self.width = 0
        self.role = role


class Transcript(TranscriptCursor, ScrollView, can_focus=True):
    """Turns of a conversation; the answer being generated streams in via feed()/flush()."""

    # scrolling keys stay out of the footer (the F-keys need its room); the byte cursor's
    # show while it is on
    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("left", "cursor_step(-1)", "Byte"),
        Binding("right", "cursor_step(1)", "Byte"),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.cursor is not None if action == "cursor_step" else True

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None,
                 byte_cursor: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.byte_cursor = byte_cursor  # clicks put the byte cursor (the chat's transcript)
        self._paragraphs: list[_Paragraph] = []
        self._vlines: list[_VLine] = []
        self._strips: dict[int, Strip] = {}
        self._pending: list[ByteLike] = []
        self._decoder = GlyphDecoder()
        self._wrap_width = 80
        self._streaming = False
        self.show_marks = True
        self.book = StyleBook()
        # follow the stream: on unless the user scrolls up, back on at the bottom or on send
        self.follow = True
        # counters for tests and benchmarks
        self.flush_count = 0
        self.strips_built = 0
        self.bytes_absorbed = 0

    # ------------------------------------------------------------ public API
    @property
    def line_count(self) -> int:
        return len(self._vlines)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def streaming(self) -> bool:
        return self._streaming

    def set_options(self, *, show_entropy: bool | None = None, show_marks: bool | None = None,
                    dark: bool | None = None) -> None:
        restyle = self.book.configure(
            self.book.show_entropy if show_entropy is None else show_entropy,
            self.book.dark if dark is None else dark)
        relayout = show_marks is not None and show_marks != self.show_marks
        if show_marks is not None:
            self.show_marks = show_marks
        if relayout:
            self._relayout()
        elif restyle:
            self._strips.clear()
            self.refresh()

    def clear(self) -> None:
        self.cursor_leave()
        self._paragraphs.clear()
        self._vlines.clear()
        self._strips.clear()
        self._pending.clear()
        self._decoder.reset()
        self._streaming = False
        self.follow = True
        self._update_size()
        self.refresh()

    def add_user(self, text: str, header: str = "you ›") -> None:
        self._add_block(header, ROLE_USER, text_glyphs(text))

    def add_info(self, text: str) -> None:
        self._add_block(None, ROLE_INFO, text_glyphs(text))

    def add_answer(self, records: Iterable[ByteLike], header: str = "blt ›", note: str | None = None) -> None:
        """A complete answer (e.g. when rebuilding the transcript)."""
        self.begin_answer(header)
        self._pending.extend(records)
        self.end_answer(note)

    def begin_answer(self, header: str = "blt ›") -> None:
        self.flush()
        self._decoder.reset()
        self._add_block(header, ROLE_ASSISTANT, [])
        self._streaming = True

    def feed(self, record: ByteLike) -> None:
        """Queue one byte; it appears at the next flush()."""
        self._pending.append(record)

    def feed_many(self, records: Sequence[ByteLike]) -> None:
        self._pending.extend(records)

    def end_answer(self, note: str | None = None) -> None:
        self.flush(final=True)
        self._streaming = False
        if note:
            self._add_block(None, ROLE_INFO, text_glyphs(note), gap=False)

    def flush(self, final: bool = False) -> bool:
        """Lay out queued bytes; repaint only changed lines. Returns True if anything changed."""
        if not self._pending and not final:
            return False
        glyphs: list[Glyph] = []
        dec = self._decoder
        for rec in self._pending:
            dec.feed(rec, glyphs)
        self.bytes_absorbed += len(self._pending)
        self._pending.clear()
        if final:
            dec.flush(glyphs)
        if not glyphs:
            return False
        first_changed = max(0, len(self._vlines) - 1)
        if not self._paragraphs:
            self._paragraphs.append(_Paragraph(ROLE_ASSISTANT))
            self._vlines.append(_VLine(ROLE_ASSISTANT))
        para = self._paragraphs[-1]
        role = para.role
        for g in glyphs:
            if g.newline:
                para = _Paragraph(role)
                self._paragraphs.append(para)
                self._vlines.append(_VLine(role))
                continue
            para.glyphs.append(g)
            self._place(g)
        self.flush_count += 1
        for i in range(first_changed, len(self._vlines)):
            self._strips.pop(i, None)
        self._update_size()
        top = int(self.scroll_offset.y)
        height = self.scrollable_content_region.height or self.size.height
        lo, hi = max(first_changed, top), min(len(self._vlines), top + height)
        if hi > lo:
            self.refresh_lines(lo - top, hi - lo)
        return True

    def plain_text(self) -> str:
        """Everything on screen as text (escapes as shown, no marks)."""
        lines = []
        for p in self._paragraphs:
            lines.append("".join(g.text for g in p.glyphs if g.kind != KIND_MARK))
        return "\n".join(lines)

    # ------------------------------------------------------------ layout
    def _add_block(self, header: str | None, role: str, glyphs: list[Glyph], gap: bool = True) -> None:
        self.flush()
        first_changed = len(self._vlines)
        if gap and self._paragraphs:
            self._new_paragraph(ROLE_INFO)
        if header is not None:
            self._new_paragraph("header-" + role)
            for g in text_glyphs(header):
                self._paragraphs[-1].glyphs.append(g)
                self._place(g)
        self._new_paragraph(role)
        for g in glyphs:
            if g.newline:
                self._new_paragraph(role)
            else:
                self._paragraphs[-1].glyphs.append(g)
                self._place(g)
        for i in range(first_changed, len(self._vlines)):
            self._strips.pop(i, None)
        self._update_size()
        self.refresh()

    def _new_paragraph(self, role: str) -> None:
        self._paragraphs.append(_Paragraph(role))
        self._vlines.append(_VLine(role))

    def _place(self, g: Glyph) -> None:
        if g.kind == KIND_MARK and not self.show_marks:
            return
        line = self._vlines[-1]
        if line.width + g.width > self._wrap_width and line.glyphs:
            new = _VLine(line.role)
            if g.text == " ":
                # a space at the wrap point: it ends the line, the next line starts with the word
                self._vlines.append(new)
                return
            if not g.text.isspace():
                # word wrap: carry the unfinished word over, if it is short
                gl = line.glyphs
                i = len(gl)
                while i > 0 and len(gl) - i < MAX_WORD and not gl[i - 1].text.isspace():
                    i -= 1
                if 0 < i < len(gl) and len(gl) - i < MAX_WORD:
                    new.glyphs = gl[i:]
                    new.width = sum(x.width for x in new.glyphs)
                    del gl[i:]
                    line.width -= new.width
            self._vlines.append(new)
            line = new
        line.glyphs.append(g)
        line.width += g.width

    def _relayout(self) -> None:
        """Re-wrap everything (on width change or when marks are toggled): O(transcript)."""
        self._vlines = []
        for p in self._paragraphs:
            self._vlines.append(_VLine(p.role))
            for g in p.glyphs:
                self._place(g)
        self._strips.clear()
        self._update_size()
        self.refresh()

    def _update_size(self) -> None:
        self.virtual_size = Size(self._wrap_width, len(self._vlines))
        if self.follow:
            self.scroll_to(y=max(0, len(self._vlines) - self.scrollable_content_region.height),
                           animate=False, immediate=True)

    def follow_stream(self) -> None:
        """Pin the view to the bottom again (the user sent a prompt)."""
        self.follow = True
        self._update_size()

    # the user's scrolling decides whether the view follows the stream
    def _after_user_scroll(self) -> None:
        self.follow = self.scroll_target_y >= len(self._vlines) - self.scrollable_content_region.height

    # with the byte cursor, the arrows move it; without it, Up/Down scroll
    def action_cursor_step(self, step: int) -> None:
        self.cursor_step(step)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if self.byte_cursor and offset is not None:
            self.cursor_click(offset.x, offset.y)

    def action_scroll_up(self) -> None:
        if self.cursor is not None:
            self.cursor_line(-1)
            return
        super().action_scroll_up()
        self.follow = False

    def action_page_up(self) -> None:
        super().action_page_up()
        self.follow = False

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        self.follow = False

    def action_scroll_down(self) -> None:
        if self.cursor is not None:
            self.cursor_line(1)
            return
        super().action_scroll_down()
        self._after_user_scroll()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._after_user_scroll()

    def action_scroll_end(self) -> None:
        super().action_scroll_end()
        self.follow = True

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        super()._on_mouse_scroll_up(event)
        self.follow = False

    def _on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        super()._on_mouse_scroll_down(event)
        self._after_user_scroll()

    def on_resize(self) -> None:
        self.sync_width()

    def sync_width(self) -> None:
        """Re-wrap when the content width changed. A region of width 0 (not laid out yet, e.g.
        behind a screen pushed during start-up) is no width to wrap at: wrapping at it left the
        transcript 10 columns wide for the whole session when F1 was typed while loading."""
        width = self.scrollable_content_region.width
        if width > 0 and max(10, width) != self._wrap_width:
            self._wrap_width = max(10, width)
            self._relayout()

    # ------------------------------------------------------------ rendering
    _PLAIN = {
        "header-user": Style(bold=True, color="#5fafff"),
        "header-assistant": Style(bold=True, color="#87d787"),
        ROLE_INFO: Style(dim=True, italic=True),
    }

    def _build_strip(self, index: int) -> Strip:
        self.strips_built += 1
        line = self._vlines[index]
        plain = self._PLAIN.get(line.role)
        segments: list[Segment] = []
        book = self.book
        run_text: list[str] = []
        run_style: Style | None = None
        at = self.cursor_place()
        cursor_glyph = at[1] if at is not None and at[0] == index else -1
        for gi, g in enumerate(line.glyphs):
            if plain is not None and g.kind == KIND_TEXT and g.bucket == NO_BUCKET:
                st = plain
            else:
                st = book.style(g.kind, g.bucket, g.parity)
            if gi == cursor_glyph:
                st = st + CURSOR_STYLE
            if st is not run_style and run_text:
                segments.append(Segment("".join(run_text), run_style))
                run_text = []
            run_style = st
            run_text.append(g.text)
        if run_text:
            segments.append(Segment("".join(run_text), run_style))
        return Strip(segments, line.width)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if width > 0 and max(10, width) != self._wrap_width:  # laid out without a Resize
            self.call_after_refresh(self.sync_width)
        base = self.rich_style
        if index >= len(self._vlines):
            return Strip.blank(width, base)
        strip = self._strips.get(index)
        if strip is None:
            strip = self._strips[index] = self._build_strip(index)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_style(base)
