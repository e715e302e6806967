"""`blt info --train`: the memory one process needs to fine-tune the model, with and without
sharding (blt_model/train/memory.py has the formula)."""

from __future__ import annotations

import argparse
from typing import Any

from .arguments import COUNT, arg, number

__all__ = ["TRAIN_ARGUMENTS", "print_training_memory", "training_memory_info"]

# the rows `blt info` adds to its table
TRAIN_ARGUMENTS = (
    arg("--train", action="store_true",
        help="memory per process to fine-tune the model (weights, gradients, AdamW states, activations), "
        "with and without FSDP sharding"),
    arg("--world-size", type=COUNT, default=1, metavar="N", help="with --train: processes sharing the model"),
    arg("--dtype", choices=["fp32", "bf16"], default="fp32",
        help="with --train: compute dtype (bf16: bf16 activations, fp32 master weights)"),
    arg("--seq-len", type=number(int, 2), default=512, metavar="L", help="with --train: ids per sequence"),
    arg("--batch-size", type=COUNT, default=8, metavar="B", help="with --train: sequences per step and process"),
    arg("--activation-checkpointing", action="store_true", help="with --train: recompute block activations"),
)


def training_memory_info(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The estimate for one process (DDP: every process holds everything) and for FSDP."""
    from ..train.memory import training_memory

    common = {"seq_len": args.seq_len, "batch_size": args.batch_size, "bf16": args.dtype == "bf16",
              "activation_checkpointing": args.activation_checkpointing}
    plain = training_memory(model, world_size=args.world_size, sharded=False, **common)
    sharded = training_memory(model, world_size=args.world_size, sharded=True, **common)
    return {"world_size": args.world_size, "dtype": args.dtype, "seq_len": args.seq_len,
            "batch_size": args.batch_size, "activation_checkpointing": args.activation_checkpointing,
            "unsharded": plain.as_dict(), "sharded": sharded.as_dict()}


def print_training_memory(con: Any, info: dict[str, Any]) -> None:
    from rich.table import Table

    from ..guards import format_bytes

    n = info["world_size"]
    t = Table(title=f"Fine-tuning memory per process: batch {info['batch_size']} x {info['seq_len']} ids, "
              f"{info['dtype']}{', activation checkpointing' if info['activation_checkpointing'] else ''}",
              header_style="bold")
    t.add_column("Part")
    t.add_column("one process or DDP", justify="right")
    t.add_column(f"FSDP over {n} process{'es' if n > 1 else ''}", justify="right")
    for key in info["unsharded"]:
        t.add_row(key, format_bytes(info["unsharded"][key]), format_bytes(info["sharded"][key]))
    con.print(t)
