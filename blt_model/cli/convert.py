"""`blt convert`: a model (e.g. Meta's BLT weights in transformers format, io/hf_compat.py)
written in this project's format (io/checkpoint.py), or with `--to transformers` in transformers'
BLT format (io/hf_export.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .arguments import DTYPES, Command, arg
from .commands import console, load_path, torch_dtype
from .style import markup_safe

__all__ = ["COMMAND", "run"]


def _check_destination(src: Path, dst: Path, overwrite: bool) -> bool:
    """Refuse a destination that is the source, a file, or (without --overwrite) not empty;
    -> whether it is occupied (and is to be moved aside)."""
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the destination is the source directory")
    if os.path.lexists(dst) and not dst.is_dir():
        raise ValueError(f"{dst}: exists and is not a directory")
    occupied = dst.is_dir() and any(dst.iterdir())
    if occupied and not overwrite:
        raise ValueError(f"{dst}: exists and is not empty; pass --overwrite to move it aside")
    return occupied


def run(args: argparse.Namespace) -> int:
    """Load SRC (a transformers BLT directory: config.json with model_type 'blt' and
    model.safetensors or sharded safetensors; or a blt-chat model) and write DST as config.json
    + model.safetensors, in this project's format or (`--to transformers`) transformers'."""
    import torch

    from ..io.checkpoint import move_aside, save_model
    from ..io.hf_export import blt_config_to_hf, save_hf_model

    src, dst = Path(args.src).expanduser(), Path(args.dst).expanduser()
    occupied = _check_destination(src, dst, args.overwrite)
    dtype = torch_dtype(args.dtype)
    model = load_path(src, torch.device("cpu"), dtype)
    to_hf = args.to == "transformers"
    if to_hf:
        blt_config_to_hf(model.config)  # refused before the destination is touched
    con = console()
    if occupied:  # only now: the source may live inside the destination
        con.print(f"moved the old {markup_safe(dst)} to {markup_safe(move_aside(dst))}")
    if to_hf:
        save_hf_model(model, dst, dtype=dtype)
    else:
        save_model(model, dst, dtype=dtype, metadata={"converted_from": str(src)})
    cfg = model.config
    thr = f"{cfg.patching.entropy_threshold:.4f} nats" if cfg.entropy_threshold_calibrated else "not calibrated"
    con.print(f"wrote {markup_safe(dst)} ({'transformers' if to_hf else 'blt-chat'} format, "
              f"{model.num_parameters():,} parameters, "
              f"{str(next(model.parameters()).dtype).replace('torch.', '')}; patching: "
              f"{cfg.patching.scheme}, threshold {thr})")
    return 0


COMMAND = Command(
    "convert", help="write a model (e.g. Meta's BLT weights in transformers format) in this project's format, "
    "or back in transformers format",
    run=run, arguments=(
        arg("src", metavar="SRC"),
        arg("dst", metavar="DST"),
        arg("--to", choices=["blt-chat", "transformers"], default="blt-chat",
            help="format of DST: this project's (default) or transformers' BltForCausalLM (only models "
            "transformers' BLT can express, e.g. converted or fine-tuned from transformers format)"),
        arg("--dtype", choices=list(DTYPES), help="precision of the written weights (default fp32)"),
        arg("--overwrite", "--force", action="store_true",
            help="DST is not empty: move it aside (to DST.old-TIMESTAMP) and write anew"),
    ))
