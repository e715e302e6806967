"""The argument parser of `blt`, built from the commands' tables (one module per command)."""

from __future__ import annotations

import argparse

from ..guards import terminal_safe
from . import compress, convert, evaluate, finetune, generate, info, train
from .arguments import Command
from .errors import EXIT_BAD_INPUT, EXIT_STATUS

__all__ = ["COMMANDS", "build_parser"]

COMMANDS: tuple[Command, ...] = (train.COMMAND, finetune.COMMAND, evaluate.COMMAND, generate.COMMAND, convert.COMMAND,
                                 info.COMMAND, compress.COMPRESS, compress.DECOMPRESS)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit status 2), like every other error of `blt`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {terminal_safe(message)} (see {self.prog} --help)\n")


def _add_command(sub: argparse._SubParsersAction, command: Command, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(command.name, parents=[common], epilog=EXIT_STATUS, help=command.help,
                       description=command.description)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for a in command.arguments:
        if a.group is not None and a.group not in groups:
            groups[a.group] = p.add_mutually_exclusive_group()
        target = p if a.group is None else groups[a.group]
        target.add_argument(*a.flags, **a.options)
    p.set_defaults(func=command.run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="blt", description="Byte Latent Transformer: train, evaluate, "
                     "generate and inspect byte-level models (no tokenizer).", epilog=EXIT_STATUS)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # --debug after the command too; SUPPRESS keeps a subcommand from resetting the global flag
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an error")
    for command in COMMANDS:
        _add_command(sub, command, common)
    return parser
