"""What a command of `blt` is, as data: its name, help texts, arguments and the function that
runs it. Each command module (train, evaluate, generate, convert, info) defines one `Command`;
`parser.build_parser` turns them into the argument parser."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["COUNT", "DTYPES", "SEED", "Argument", "Command", "arg", "number"]

# --dtype names -> torch dtype names
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class Argument(NamedTuple):
    flags: tuple[str, ...]
    options: dict[str, Any]
    group: str | None  # arguments with the same group name exclude each other


def arg(*flags: str, group: str | None = None, **options: Any) -> Argument:
    """One row of an argument table: `add_argument(*flags, **options)`."""
    return Argument(flags, options, group)


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # the line in `blt --help`
    arguments: tuple[Argument, ...]
    run: Callable[[argparse.Namespace], int] = field(repr=False)

    @property
    def description(self) -> str:
        """The paragraph of `blt NAME --help`: the docstring of the command's `run`."""
        return " ".join((self.run.__doc__ or "").split())


def number(kind: type, low: float | None = None, high: float | None = None, *, above: bool = False
           ) -> Callable[[str], Any]:
    """argparse type: an int/float that is finite and in range; the message says which range."""
    def show(x: float) -> str:
        return str(x) if kind is int else f"{x:g}"

    rng = " and ".join(p for p in ((f"> {show(low)}" if above else f">= {show(low)}") if low is not None else "",
                                   f"<= {show(high)}" if high is not None else "") if p)
    want = f"{'an integer' if kind is int else 'a finite number'}{' ' + rng if rng else ''}"

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}") from None
        ok = math.isfinite(v) and (low is None or (v > low if above else v >= low)) and (high is None or v <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {want}, got {text!r}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


COUNT = number(int, 1)
SEED = number(int, 0, 2**64 - 1)
