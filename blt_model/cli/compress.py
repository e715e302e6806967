"""`blt compress` and `blt decompress`: the model as a compressor (blt_model/codec).

    blt compress --model DIR notes.txt notes.blt
    blt decompress --model DIR notes.blt notes.txt
    cat notes.txt | blt compress - - > notes.blt

`-` reads standard input or writes standard output; an existing output file is refused unless
--force, and a file output is written to a temporary file renamed at the end (never half a
file). A progress bar (bytes done, speed) shows on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..guards import read_regular_file, terminal_safe
from .arguments import COUNT, Command, arg
from .commands import console, load_model_arg, pick_device

__all__ = ["COMPRESS", "DECOMPRESS"]


def _read_input(name: str) -> bytes:
    return sys.stdin.buffer.read() if name == "-" else read_regular_file(name)


def _check_output(name: str, force: bool) -> None:
    """Before the slow part: an existing output is refused unless --force."""
    if name == "-":
        return
    p = Path(name)
    if p.is_dir():
        raise ValueError(f"{name}: is a directory; give a file name")
    if p.exists() and not force:
        raise ValueError(f"{name}: already exists; pass --force to overwrite it")


def _write_output(name: str, data: bytes) -> None:
    from ..io.files import atomic_write_bytes

    if name == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write_bytes(name, data)


@contextlib.contextmanager
def _progress(total: int, what: str) -> Iterator[Callable[[int], None]]:
    """A progress callback: a bar with bytes done and speed on a terminal (stderr), else nothing."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    show = sys.stderr.isatty() and total > 0
    with Progress(TextColumn(what), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                  console=console(stderr=True), transient=True, disable=not show) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _model(args: argparse.Namespace):
    import torch

    model, _ = load_model_arg(args.model, pick_device(args.device), allow_random=False, dtype=torch.float32)
    return model


def run_compress(args: argparse.Namespace) -> int:
    """Cut the input into chunks and code each with the model's next-byte distribution (range
    coding), many chunks at once. Decompression needs the same model, and the same torch
    version, device type, CPU type and thread count to reproduce the probabilities exactly.
    Needs the constriction library: pip install 'blt-chat[compress]'."""
    from ..codec import compress

    _check_output(args.output, args.force)
    data = _read_input(args.input)
    model = _model(args)
    with _progress(len(data), "compressing") as progress:
        blob = compress(model, data, chunk_size=args.chunk_size, batch_size=args.batch_size, threads=args.threads,
                        progress=progress)
    _write_output(args.output, blob)
    if args.output != "-" and len(data):
        console(stderr=True).print(f"{terminal_safe(args.output)}: {len(data)} -> {len(blob)} bytes "
                                   f"({8 * len(blob) / len(data):.3f} bits per byte)", markup=False)
    return 0


def run_decompress(args: argparse.Namespace) -> int:
    """Decode a `blt compress` file with the model that wrote it (its chunk and batch layout
    and thread count come from the file). Nothing is written unless every chunk passes its
    CRC32 check."""
    from ..codec import decompress, read_header

    _check_output(args.output, args.force)
    blob = _read_input(args.input)
    name = "standard input" if args.input == "-" else args.input
    header = read_header(blob, name)  # a damaged or foreign file is refused before the model loads
    model = _model(args)
    warn = console(stderr=True)
    with _progress(header.original_length, "decompressing") as progress:
        data = decompress(model, blob, progress=progress, name=name,
                          warn=lambda msg: warn.print(f"warning: {terminal_safe(msg)}", markup=False))
    _write_output(args.output, data)
    return 0


_COMMON = (
    arg("input", metavar="IN", help="input file, or - for standard input"),
    arg("output", metavar="OUT", help="output file, or - for standard output"),
    arg("--model", metavar="DIR", help="model directory (default: the shipped model); decompress needs the "
        "same model"),
    arg("--force", action="store_true", help="overwrite an existing output file"),
    arg("--device", default="cpu", help="device that computes the probabilities (default cpu; "
        "decompress on the same kind of device)"),
)

COMPRESS = Command(
    "compress", help="compress a file with a model (arithmetic coding of its next-byte probabilities)",
    run=run_compress, arguments=(
        *_COMMON,
        arg("--chunk-size", type=COUNT, metavar="BYTES",
            help="bytes per chunk, each coded from BOS without context (default: twice the model's context, less 1)"),
        arg("--batch-size", type=COUNT, default=32, metavar="N", help="chunks coded together (default 32)"),
        arg("--threads", type=COUNT, default=1, metavar="N",
            help="torch threads while coding; recorded, and used again to decompress (default 1)"),
    ))

DECOMPRESS = Command(
    "decompress", help="decompress a file written by `blt compress`",
    run=run_decompress, arguments=_COMMON)
