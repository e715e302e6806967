"""The `blt` command line: one module per command (train, evaluate, generate, convert, info), the
parser built from their tables (parser.py, arguments.py), the entry point and shared loading
(commands.py), exit statuses (errors.py) and rich output (report.py, style.py). The only part of
blt_model that prints (docs/architecture.md, "File layout")."""

from .commands import main

__all__ = ["main"]
