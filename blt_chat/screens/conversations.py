"""The conversations screen (F9): every saved conversation with its title, model, date and size.
Enter opens one, N starts a new one, R renames, D deletes after a confirmation. It dismisses with
what to show ("open", path) or ("new", None); renames and deletes are messages to the app, which
hands them to the chat screen (the current conversation may be the one changed) and then calls
`show()` here with the new list."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..keys import CONVERSATION_KEYS, bindings, key_hint
from ..messages import ConversationDeleted, ConversationRenamed
from ..store import Summary, format_size
from .closing import close
from .dialogs import ConfirmScreen, TextPromptScreen

Choice = tuple[str, Path | None]


def when(t: float) -> str:
    """Today's conversations by time, older ones by date."""
    same_day = time.strftime("%Y-%m-%d", time.localtime(t)) == time.strftime("%Y-%m-%d")
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", time.localtime(t))


class ConversationsScreen(ModalScreen[Choice | None]):
    CSS_PATH = "conversations.tcss"
    BINDINGS = bindings(CONVERSATION_KEYS)

    def __init__(self, summaries: list[Summary], current: Path | None, directory: Path) -> None:
        super().__init__()
        self.summaries = summaries
        self.current = current
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Conversations — saved in {self.directory}"), id="conv-title")
            yield DataTable(id="conv-table", cursor_type="row", zebra_stripes=True)
            yield Static(key_hint(CONVERSATION_KEYS), id="conv-keys")

    @property
    def table(self) -> DataTable:
        return self.query_one("#conv-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns("Title", "Model", "Date", "Size")
        self.show(self.summaries)
        self.table.focus()

    def show(self, summaries: list[Summary], current: Path | None = None) -> None:
        """(Re)fill the list, keeping the cursor on the conversation it was on (a renamed one
        moves to the top), else near where it was."""
        was = self.selected()
        self.summaries = summaries
        if current is not None:
            self.current = current
        table = self.table
        row = table.cursor_row
        if was is not None:
            row = next((i for i, s in enumerate(summaries) if s.path == was.path), row)
        table.clear()
        for s in summaries:
            mark = "● " if self.current is not None and s.path == self.current else "  "
            # titles and model names are the user's text: plain Text, never markup
            table.add_row(Text(mark + s.title), Text(s.model or "?"), when(s.updated),
                          f"{format_size(s.size)} · {s.turns} turns", key=str(s.path))
        if not summaries:
            table.add_row(Text("(no saved conversations yet: N starts one)"), "", "", "", key="")
        if summaries:
            table.move_cursor(row=min(row, len(summaries) - 1))

    def selected(self) -> Summary | None:
        if not self.summaries:
            return None
        row = self.table.cursor_row
        return self.summaries[row] if 0 <= row < len(self.summaries) else None

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        s = self.selected()
        if s is not None and self.app.screen is self:
            self.dismiss(("open", s.path))

    def action_new(self) -> None:
        if self.is_attached and self.app.screen is self:
            self.dismiss(("new", None))

    def action_rename(self) -> None:
        s = self.selected()
        if s is None or self.app.screen is not self:
            return

        def done(title: str | None) -> None:
            if title is not None and title.strip():
                self.post_message(ConversationRenamed(s.path, title.strip()))

        self.app.push_screen(TextPromptScreen(f"New title for «{s.title}»:", s.title), callback=done)

    def action_delete(self) -> None:
        s = self.selected()
        if s is None or self.app.screen is not self:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.post_message(ConversationDeleted(s.path))

        self.app.push_screen(ConfirmScreen(f"Delete «{s.title}»?\nThe file {s.path} is removed.",
                                           yes="Delete"), callback=done)

    def action_close(self) -> None:
        close(self)
