"""The branches screen (F10): the turns of the current branch, each with its place among the
alternatives kept at that point ("2/3": regenerated answers, edited prompts). Left/Right switch
the selected turn's alternative (the branch below it follows), Enter on a prompt edits it: the
screen dismisses with that turn, and the chat puts it in the prompt box. The conversation is
changed in place; the chat redraws it when the screen closes."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..conversation import Conversation, Turn
from ..keys import BRANCH_KEYS, bindings, key_hint
from .closing import close
from .side_by_side import SideBySideScreen, kept_answers

PREVIEW = 70


def turn_line(conv: Conversation, turn: Turn) -> Text:
    pos, n = conv.alternatives(turn)
    who = "you ›" if turn.role == "user" else "blt ›"
    first = turn.text.strip().replace("\n", " ⏎ ")
    preview = first[:PREVIEW] + ("…" if len(first) > PREVIEW else "") or "(empty)"
    line = Text(f"{who} ", style="bold #5fafff" if turn.role == "user" else "bold #87d787")
    line.append(f"‹{pos}/{n}› " if n > 1 else "      ", style="bold" if n > 1 else "")
    line.append(preview)  # the user's and the model's text: plain, never markup
    return line


class BranchesScreen(ModalScreen[Turn | None]):
    CSS_PATH = "branches.tcss"
    BINDINGS = bindings(BRANCH_KEYS)

    def __init__(self, conversation: Conversation) -> None:
        super().__init__()
        self.conversation = conversation

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Branches — the turns shown in the chat; ‹k/n› = alternatives kept there",
                         id="branch-title")
            yield OptionList(id="branch-list")
            yield Static(key_hint(BRANCH_KEYS), id="branch-keys")

    @property
    def options(self) -> OptionList:
        return self.query_one("#branch-list", OptionList)

    def on_mount(self) -> None:
        self.fill(len(self.conversation.turns) - 1)
        self.options.focus()

    def fill(self, highlight: int) -> None:
        ol = self.options
        ol.clear_options()
        ol.add_options([Option(turn_line(self.conversation, t)) for t in self.conversation.turns])
        if self.conversation.turns:
            ol.highlighted = max(0, min(highlight, len(self.conversation.turns) - 1))

    def action_switch(self, step: int) -> None:
        i = self.options.highlighted
        turns = self.conversation.turns
        if i is None or not 0 <= i < len(turns):
            return
        self.conversation.cycle(turns[i], step)
        self.fill(i)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        turns = self.conversation.turns
        i = event.option_index
        if self.app.screen is self and 0 <= i < len(turns):
            self.dismiss(turns[i] if turns[i].role == "user" else None)

    def action_side_by_side(self) -> None:
        i = self.options.highlighted
        turns = self.conversation.turns
        if i is None or not 0 <= i < len(turns):
            return
        open_side_by_side(self, self.conversation, turns[i])

    def action_close(self) -> None:
        close(self)


def open_side_by_side(screen: Screen, conversation: Conversation, turn: Turn | None) -> None:
    """Push the side-by-side view of `turn`'s kept answers (a prompt's: of its answers), or say
    why there is none."""
    if turn is not None and turn.role == "user" and turn.children:
        turn = turn.children[min(turn.active, len(turn.children) - 1)]
    if turn is None or turn.role != "assistant" or len(kept_answers(turn)) < 2:
        screen.notify("Side by side needs an answer with at least two kept answers: regenerate "
                      "it (F5) first.", severity="warning")
        return
    settings = getattr(screen.app, "settings", None)
    dark = screen.app.current_theme.dark if screen.app.current_theme else True
    screen.app.push_screen(SideBySideScreen(
        conversation, turn, show_entropy=getattr(settings, "show_entropy", True),
        show_marks=getattr(settings, "show_patch_marks", True), dark=dark))
