"""The `blt` command line: commands and their rich output. The only part of blt_model that prints."""

from .commands import main

__all__ = ["main"]
