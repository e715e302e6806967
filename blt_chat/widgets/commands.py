"""Command palette provider of the chat screen: every command of the key table (keys.py) plus
those without a key. Commands run on the screen the palette was opened from."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual import work
from textual.await_complete import AwaitComplete
from textual.command import (
    CommandPalette,
    DiscoveryHit,
    Hit,
    Hits,
    Provider,
)
from textual.css.query import NoMatches

from ..keys import palette_commands


class BLTCommands(Provider):
    async def discover(self) -> Hits:
        for title, help_text, action in palette_commands():
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in palette_commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.screen.run_action, action),
                          help=help_text)


class SafeCommandPalette(CommandPalette):
    """Textual's command palette without three crashes that fast typing causes (Textual 8.2.8,
    found by the fuzz test): PageUp/PageDown while the command list is being refilled raises
    KeyError in OptionList._move_page; closing the palette while its search worker runs raises
    NoMatches for the removed CommandList; Enter or Esc twice dismisses it twice, and the second
    dismiss pops the screen below (ScreenStackError). All three now end quietly."""

    def dismiss(self, result: Any = None) -> AwaitComplete:
        if self.is_attached and self.app.screen is self:
            return super().dismiss(result)
        return AwaitComplete()

    def _action_command_list(self, action: str) -> None:
        try:
            super()._action_command_list(action)
        except (KeyError, IndexError):
            pass

    @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP, exit_on_error=False)
    async def _gather_commands(self, search_value: str) -> None:
        try:
            await CommandPalette._gather_commands.__wrapped__(self, search_value)
        except NoMatches:
            pass  # the palette closed while it searched
