"""`blt eval`: bits per byte of files under a model, next to gzip, bz2 and lzma
(train/evaluation.py computes, report.py draws the table)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..guards import read_regular_file
from .arguments import COUNT, Command, arg, number
from .commands import console, load_model_arg, naming_model, pick_device
from .style import markup_safe

__all__ = ["COMMAND", "run"]


def _read_eval_file(path: str) -> bytes:
    from ..train.data import DataError

    p = Path(path)
    data = read_regular_file(p, error=DataError)  # a FIFO or /dev/zero would never end
    if not data:
        raise DataError(f"{p}: the file is empty")
    return data


def _compressed(model, data: bytes) -> dict[str, Any]:
    """The real size `blt compress` writes for `data` (default layout, one thread)."""
    from ..codec import compress

    size = len(compress(model, data))
    return {"bytes": size, "bits_per_byte": 8 * size / len(data)}


def run(args: argparse.Namespace) -> int:
    """Score files with a model and with the standard-library compressors at their highest
    levels; lower bits per byte is better."""
    from ..inference.threads import use_thread_policy
    from ..train.evaluation import compressor_bits_per_byte, compute_bits_per_byte
    from .report import print_compression_table

    files = {f: _read_eval_file(f) for f in args.files}  # check every file before the slow part
    reference = _read_eval_file(args.reference) if args.reference else None
    device = pick_device(args.device)
    use_thread_policy()  # the app's thread count (OMP_NUM_THREADS wins)
    model, label = load_model_arg(args.model, device, allow_random=False)
    results, rows = [], []
    for name, data in files.items():
        with naming_model(label):
            metrics = compute_bits_per_byte(model, data, batch_size=args.batch_size, window=args.window,
                                            device=device)
        base = compressor_bits_per_byte(data)
        entry: dict[str, Any] = {"file": name, "bytes": len(data), "bits_per_byte": metrics["bits_per_byte"],
                                 "metrics": metrics, "compressors": base}
        row = {"file": markup_safe(name), "bytes": len(data), "model": metrics["bits_per_byte"], **base}
        if args.compressed_size:
            entry["compressed"] = _compressed(model, data)
            row["blt compress"] = entry["compressed"]["bits_per_byte"]
        if reference is not None:
            given = compressor_bits_per_byte(data, reference)
            entry["compressors_given_reference"] = given
            row.update({f"{k}+ref": v for k, v in given.items()})
        results.append(entry)
        rows.append(row)
    if args.json:
        print(json.dumps({"model": label, "results": results}, indent=2))
    else:
        print_compression_table(rows, title=f"Bits per byte, lower is better (model: {markup_safe(label)})",
                                console=console())
    return 0


COMMAND = Command(
    "eval", help="bits per byte of files, next to gzip, bz2 and lzma",
    run=run, arguments=(
        arg("files", nargs="+", metavar="FILE"),
        arg("--model", metavar="DIR", help="model directory (default: the shipped model)"),
        arg("--json", action="store_true", help="print JSON instead of a table"),
        arg("--reference", metavar="FILE", help="also give compressors this file first (e.g. the training split)"),
        arg("--device"),
        arg("--batch-size", type=COUNT, default=4),
        arg("--window", type=number(int, 2), metavar="N", help="ids per scoring window (default: model maximum)"),
        arg("--compressed-size", action="store_true",
            help="also compress each file with `blt compress` and report its real size (slow: about 1 KB/s on one CPU core)"),
    ))
