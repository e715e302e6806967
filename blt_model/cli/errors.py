"""How `blt` ends: exit statuses, and an exception turned into one line on stderr."""

from __future__ import annotations

import os
import sys

from ..guards import terminal_safe

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_STATUS", "describe",
           "report_error", "stdout_gone"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STATUS = ("exit status: 0 success; 1 runtime failure (a write failed, the model produced "
               "non-finite numbers, training could not continue); 2 bad input (a bad file, path, "
               "config, option or number); 130 interrupted (Ctrl+C; `blt train` saves last/ first). "
               "Errors are one line on stderr; --debug adds the traceback.")


def describe(e: BaseException) -> tuple[str, int]:
    """(one-line message, exit status) for an exception that ends a command."""
    msg = str(e)
    if isinstance(e, OSError):
        msg = e.strerror or msg or type(e).__name__
        if e.filename is not None and os.fsdecode(e.filename) not in msg:
            msg = f"{os.fsdecode(e.filename)}: {msg}"
        return msg, EXIT_FAILURE
    if isinstance(e, MemoryError):
        return "out of memory" + (f" ({msg})" if msg else ""), EXIT_FAILURE
    if isinstance(e, ValueError):  # CheckpointError, DataError, bad configs and numbers
        return msg or type(e).__name__, EXIT_BAD_INPUT
    from ..inference.sampling import NonFiniteLogitsError
    from ..train import TrainingError

    if isinstance(e, (TrainingError, NonFiniteLogitsError)):
        return msg, EXIT_FAILURE
    return f"{type(e).__name__}: {msg} (an unexpected error; --debug shows where)", EXIT_FAILURE


def stdout_gone() -> None:
    """The reader of stdout left (`blt generate | head`): stop quietly, and make the final
    flush at exit go nowhere instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests capture stdout)


def report_error(command: str, msg: str) -> None:
    """`blt COMMAND: error: MSG` as one line on stderr, control characters escaped."""
    try:
        print(f"blt {command}: error: {terminal_safe(msg)}", file=sys.stderr, flush=True)
    except (BrokenPipeError, OSError):
        pass  # stderr is gone too; the exit status still tells
