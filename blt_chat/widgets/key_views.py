"""The views of the active keys: the footer every screen shows, and Textual's keys panel (the
palette's "Keys" command), each rebuilt only when the keys it shows change.

Textual rebuilds both (a widget per key; a table of every binding) whenever a screen's
bindings are refreshed, which happens on every focus change, even when the same keys stay on
show. Under fast typing across fields those rebuilds were most of the app's time, so these
views compare what they would show with what they show and skip the rebuild when equal."""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, HelpPanel, KeyPanel, Markdown


def shown_keys(screen: Screen, only_shown: bool = True) -> tuple:
    """What a view of `screen`'s bindings shows: each binding's group, key, label, display and
    state (only those marked `show`, as the footer does, unless `only_shown` is False)."""
    return tuple((type(namespace).__name__, namespace.BINDING_GROUP_TITLE, binding.key,
                  binding.description, binding.key_display or "", binding.show, enabled, tooltip)
                 for namespace, binding, enabled, tooltip in screen.active_bindings.values()
                 if binding.show or not only_shown)


class KeyFooter(Footer):
    """Footer(show_command_palette=False, compact=True) that recomposes only on a change."""

    def __init__(self) -> None:
        super().__init__(show_command_palette=False, compact=True)
        self._shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        # the same conditions under which Footer recomposes; only then is `shown` what it shows
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = shown_keys(screen)
            if self._bindings_ready and shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)


class QuietKeyPanel(KeyPanel):
    """KeyPanel whose rebuild on a bindings refresh is skipped when the bindings are the same."""

    _shown: tuple | None = None

    async def recompose(self) -> None:
        shown = shown_keys(self.screen, only_shown=False)
        if shown != self._shown:
            self._shown = shown
            await super().recompose()


class QuietHelpPanel(HelpPanel):
    """HelpPanel with a QuietKeyPanel, whose widget help is re-rendered only when it changes."""

    _help: str | None = None

    def compose(self):  # the same children as HelpPanel's, ids included (its CSS uses them)
        yield Markdown(id="widget-help")
        yield QuietKeyPanel(id="keys-help")

    def update_help(self, focused_widget: Widget | None) -> None:
        if focused_widget is None:
            self._help = None  # HelpPanel hides the help; the next widget's is shown again
        elif self.app.app_focus and self.screen.is_active:
            help_text = next((node.HELP for node in focused_widget.ancestors_with_self
                              if isinstance(node, Widget) and node.HELP), "")
            if help_text == self._help:
                return
            self._help = help_text
        super().update_help(focused_widget)
