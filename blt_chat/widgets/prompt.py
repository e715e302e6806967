"""The prompt box: a TextArea where Enter sends and Ctrl+J (or Shift+Enter, where the terminal
reports it) inserts a newline."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")


class PromptBox(TextArea):
    DEFAULT_CSS = """
    PromptBox {
        height: auto;
        min-height: 3;
        max-height: 8;
        border: round $accent;
    }
    """

    @dataclass
    class Submitted(Message):
        prompt: PromptBox
        text: str

    def __init__(self, **kw) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        self.border_title = "Prompt — Enter sends · Ctrl+J newline · Esc stops"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)
