"""The prompt box: a TextArea where Enter sends, Ctrl+J (or Shift+Enter, where the terminal
reports it) inserts a newline, and Up/Down in an empty box recall earlier prompts."""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.binding import Binding
from textual.widgets import TextArea

from ..conversation import PromptHistory
from ..messages import PromptSubmitted
from .text_area import SafeTextArea

NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")
HISTORY_KEYS = {"up": -1, "down": 1}


class PromptBox(SafeTextArea, inherit_bindings=False):
    # TextArea's own keys minus F6/F7 (select line/all): F-keys belong to the chat screen, and
    # a focused widget's binding would also put F6/F7 ahead of F1 in the footer
    BINDINGS = [b for b in TextArea.BINDINGS
                if not (isinstance(b, Binding) and b.key in ("f6", "f7"))]

    DEFAULT_TITLE = "Prompt — Enter sends · Ctrl+J newline · Esc stops"

    def __init__(self, history: Callable[[], list[str]] = list, **kw) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        self.border_title = self.DEFAULT_TITLE
        self.history_source = history
        self._history = PromptHistory()

    def clear(self) -> None:
        self._history.reset()
        super().clear()

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(PromptSubmitted(self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key in HISTORY_KEYS:
            text = self._history.step(self.history_source(), self.text, HISTORY_KEYS[event.key])
            if text is not None:
                event.stop()
                event.prevent_default()
                self.text = text
                self.move_cursor(self.document.end)
                return
        await super()._on_key(event)
