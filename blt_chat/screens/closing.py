"""Closing a pushed screen safely."""

from __future__ import annotations

from textual.screen import Screen


def close(screen: Screen) -> None:
    """Dismiss `screen` only while it is the top screen: Textual's dismiss() pops whatever is on
    top, so a late second close (a repeated key, a load that finishes after the user closed
    the picker) would pop the chat screen itself (ScreenStackError)."""
    if screen.is_attached and screen.app.screen is screen:
        screen.dismiss(None)
