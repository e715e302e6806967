"""The transcript's byte cursor: a highlighted byte of an answer, moved byte by byte (Left/Right),
line by line (Up/Down) or put by a click. It lives on the records the glyphs carry (render.py's
`Glyph.recs`), so it survives re-wrapping and streaming; its place on screen is found again
when the layout changed. The chat shows the byte's alternatives beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class CursorMoved(Message):
    """The byte under the cursor changed (None: the cursor left)."""

    record: Any | None


class TranscriptCursor:
    """Mixin for Transcript (which has `_vlines` of glyphs, `_strips` and ScrollView's API)."""

    cursor: Any | None = None  # the record (ByteEvent / StoredByte) under the cursor
    _cursor_at: tuple[int, int] | None = None  # (visual line, glyph) where it was last seen

    # ------------------------------------------------------------ finding it
    def _holds(self, li: int, gi: int, rec: Any) -> bool:
        lines = self._vlines
        if not (0 <= li < len(lines) and 0 <= gi < len(lines[li].glyphs)):
            return False
        return any(r is rec for r in lines[li].glyphs[gi].recs)

    def cursor_place(self) -> tuple[int, int] | None:
        """(visual line, glyph index) of the cursor, found again after a re-wrap."""
        rec = self.cursor
        if rec is None:
            return None
        at = self._cursor_at
        if at is not None and self._holds(*at, rec):
            return at
        for li in range(len(self._vlines) - 1, -1, -1):  # the cursor is usually near the end
            for gi, g in enumerate(self._vlines[li].glyphs):
                if any(r is rec for r in g.recs):
                    self._cursor_at = (li, gi)
                    return self._cursor_at
        self._cursor_at = None
        return None

    def _glyphs_from(self, li: int, gi: int, step: int):
        """Glyphs with records after (step 1) or before (step -1) glyph gi of line li."""
        lines = self._vlines
        while 0 <= li < len(lines):
            glyphs = lines[li].glyphs
            gi += step
            while 0 <= gi < len(glyphs):
                if glyphs[gi].recs:
                    yield li, gi
                gi += step
            li += step
            gi = -1 if step > 0 else len(lines[li].glyphs) if 0 <= li < len(lines) else 0

    # ------------------------------------------------------------ moving it
    def cursor_enter(self) -> bool:
        """Put the cursor on the last answer byte shown; False when there is none."""
        last = next(self._glyphs_from(len(self._vlines) - 1, len(self._vlines[-1].glyphs), -1), None) \
            if self._vlines else None
        if last is None:
            return False
        self._set_cursor(self._vlines[last[0]].glyphs[last[1]].recs[-1], last)
        return True

    def cursor_leave(self) -> None:
        if self.cursor is not None:
            self._set_cursor(None, None)

    def cursor_step(self, step: int) -> None:
        """One byte on (1) or back (-1), across characters, lines and answers."""
        at = self.cursor_place()
        if at is None:
            return
        recs = self._vlines[at[0]].glyphs[at[1]].recs
        k = next(i for i, r in enumerate(recs) if r is self.cursor) + step
        if 0 <= k < len(recs):  # another byte of the same character
            self._set_cursor(recs[k], at)
            return
        nxt = next(self._glyphs_from(*at, step), None)
        if nxt is not None:
            recs = self._vlines[nxt[0]].glyphs[nxt[1]].recs
            self._set_cursor(recs[0] if step > 0 else recs[-1], nxt)

    def cursor_line(self, step: int) -> None:
        """To the byte nearest below the cursor's column on the next line up or down with any."""
        at = self.cursor_place()
        if at is None:
            return
        x = self._x_of(*at)
        li = at[0] + step
        while 0 <= li < len(self._vlines):
            best = self._nearest(li, x)
            if best is not None:
                self._set_cursor(self._vlines[li].glyphs[best].recs[0], (li, best))
                return
            li += step

    def cursor_click(self, x: int, y: int) -> bool:
        """Put the cursor on the byte at content offset (x, y); False when none is there."""
        li = int(self.scroll_offset.y) + y
        if not 0 <= li < len(self._vlines):
            return False
        col = 0
        for gi, g in enumerate(self._vlines[li].glyphs):
            if col <= x < col + g.width:
                if not g.recs:
                    return False
                self._set_cursor(g.recs[0], (li, gi))
                return True
            col += g.width
        return False

    def _x_of(self, li: int, gi: int) -> int:
        return sum(g.width for g in self._vlines[li].glyphs[:gi])

    def _nearest(self, li: int, x: int) -> int | None:
        col, best, best_d = 0, None, None
        for gi, g in enumerate(self._vlines[li].glyphs):
            if g.recs and (best_d is None or abs(col - x) < best_d):
                best, best_d = gi, abs(col - x)
            col += g.width
        return best

    def _set_cursor(self, rec: Any | None, at: tuple[int, int] | None) -> None:
        old = self.cursor_place()
        self.cursor, self._cursor_at = rec, at
        for place in (old, at):
            if place is not None:
                self._strips.pop(place[0], None)
        if at is not None:
            self._show_line(at[0])
        if (old is None) != (at is None):
            self.refresh_bindings()  # the footer shows the cursor's keys while it is on
        self.refresh()
        self.post_message(CursorMoved(rec))

    def _show_line(self, li: int) -> None:
        top, height = int(self.scroll_offset.y), max(1, self.scrollable_content_region.height)
        if li < top or li >= top + height:
            self.follow = False
            self.scroll_to(y=max(0, li - height // 2), animate=False, immediate=True)
