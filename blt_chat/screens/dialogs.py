"""Two small modal dialogs: a yes/no confirmation and a one-line text entry. Both dismiss with
their answer (None = cancelled), so the caller's callback does the work."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from .closing import close


class ConfirmScreen(ModalScreen[bool]):
    """Y / Enter on "Yes" confirm; N / Esc cancel. Focus starts on "No": a stray Enter from fast
    typing never deletes anything."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-text")  # paths are plain text
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="dialog-yes")
                yield Button("No (n / Esc)", id="dialog-no")

    def on_mount(self) -> None:
        self.query_one("#dialog-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "dialog-yes")

    def action_answer(self, value: bool) -> None:
        if self.is_attached and self.app.screen is self:
            self.dismiss(value)


class TextPromptScreen(ModalScreen[str | None]):
    """One line of text; Enter accepts, Esc cancels."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", max_length: int = 200) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.question), classes="dialog-text")
            yield Input(self.value, max_length=self.max_length, id="dialog-input")
            yield Static("Enter accepts · Esc cancels", classes="dialog-hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.is_attached and self.app.screen is self:
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        close(self)
