"""Command palette provider of the chat screen: every command of the key table (keys.py) plus
those without a key. Commands run on the screen the palette was opened from."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

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
