"""A TextArea whose undo/redo survive a scrollbar change."""

from __future__ import annotations

from textual.widgets import TextArea
from textual.widgets.text_area import Selection


class SafeTextArea(TextArea):
    """Textual 8.2.8's undo/redo re-measure the text before they restore the cursor. When that
    makes the vertical scrollbar appear or vanish (undoing the clear of a long prompt), the old
    cursor lies outside the text and ValueError ends the app (found by the fuzz test). The
    cursor is parked at (0, 0), which every text has, and the edit then puts it where it was."""

    def undo(self) -> None:
        self.selection = Selection.cursor((0, 0))
        super().undo()

    def redo(self) -> None:
        self.selection = Selection.cursor((0, 0))
        super().redo()
