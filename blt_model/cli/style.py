"""Rich markup that is safe to print: text from files and models with its control characters
escaped (guards.terminal_safe) and its brackets shown, not applied."""

from __future__ import annotations

from rich.markup import escape

from ..guards import terminal_safe

__all__ = ["markup_safe"]


def markup_safe(text: object) -> str:
    """`terminal_safe` text to embed in a rich markup string (its brackets shown, not applied)."""
    return escape(terminal_safe(text))
