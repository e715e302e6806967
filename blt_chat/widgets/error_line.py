"""The one-line error shown under a field: hidden when empty, redrawn only when it changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ErrorLine(Static):
    """Fields are validated on every key, and each update of an auto-height line re-lays out the
    whole screen (a modal one redraws the dimmed screen behind it too), so an unchanged message
    is not written again. CSS shows it through the `-shown` class."""

    def __init__(self, *, id: str, classes: str = "") -> None:  # noqa: A002 (Textual's name)
        super().__init__("", id=id, classes=classes)
        self.text = ""

    def show(self, text: str) -> None:
        """Show `text` ('' hides the line). Markup-free: the text is shown as written."""
        if text == self.text:
            return
        self.text = text
        self.update(Text(text))
        self.set_class(bool(text), "-shown")
