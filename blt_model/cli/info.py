"""`blt info`: a model's config, parameter counts per component and FLOPs per byte."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..config import PRESETS
from .arguments import Command, arg, number
from .commands import console, default_model_path, load_configs, load_model_arg
from .memory import TRAIN_ARGUMENTS, print_training_memory, training_memory_info
from .style import markup_safe

__all__ = ["COMMAND", "run"]


def _model(args: argparse.Namespace):
    """(model, label) for --model, --preset/--config (on the meta device: shapes only), or the
    shipped model (else the tiny preset)."""
    import torch

    from ..io.checkpoint import meta_model
    from ..nn.model import BLT

    if args.model:
        return load_model_arg(args.model, torch.device("cpu"), allow_random=False)
    if args.preset or args.config:
        cfg, _ = load_configs(args.config, args.preset)
        # counts and FLOPs need shapes only: a config of any size is described without allocating it
        model = meta_model(cfg, Path(args.config) if args.config else None)
        return model, f"preset {args.preset}" if args.preset else str(args.config)
    path = default_model_path()
    if path is None:
        from ..config import BLTConfig

        return BLT(BLTConfig.preset("tiny")), "preset tiny (no shipped model installed)"
    return load_model_arg(str(path), torch.device("cpu"), allow_random=False)


def _config_rows(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(field, value) rows sorted by field; a nested config's fields as `patching.scheme`."""
    rows = [row for k, v in d.items()
            for row in (_config_rows(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)])]
    return sorted(rows)


def _print_tables(info: dict[str, Any], cfg: Any) -> None:
    from rich.table import Table

    con = console()
    t = Table(title=f"Config: {markup_safe(info['model'])}", header_style="bold")
    for _ in range(2):
        t.add_column("Field")
        t.add_column("Value", justify="right")
    items = _config_rows(cfg.to_dict())
    half = (len(items) + 1) // 2
    for i in range(half):
        left = items[i]
        right = items[half + i] if half + i < len(items) else ("", "")
        t.add_row(left[0], markup_safe(left[1]), right[0], markup_safe(right[1]))
    con.print(t)
    p = Table(title="Parameters", header_style="bold")
    p.add_column("Component")
    p.add_column("Parameters", justify="right")
    for k, v in info["parameters"].items():
        p.add_row(k.replace("_", " "), f"{v:,}")
    p.add_row("total without embeddings", f"{info['parameters_without_embeddings']:,}")
    con.print(p)
    patch, flops = info["mean_patch_size"], info["flops_per_byte"]
    thr = f"{cfg.patching.entropy_threshold:.4f} nats" if cfg.entropy_threshold_calibrated else "not calibrated"
    con.print(f"FLOPs per byte at mean patch size {patch:g}: {flops:,.0f} ({flops / 1e6:.2f} MFLOP); "
              f"entropy threshold: {thr}")


def run(args: argparse.Namespace) -> int:
    """Describe a model directory, a preset or a config file."""
    model, label = _model(args)
    cfg = model.config
    patch = args.patch_size if args.patch_size is not None else cfg.target_mean_patch_size
    info = {"model": label, "config": cfg.to_dict(), "parameters": model.parameter_breakdown(),
            "parameters_without_embeddings": model.num_parameters(include_embeddings=False),
            "mean_patch_size": patch, "flops_per_byte": model.flops_per_byte(patch),
            "entropy_threshold": cfg.patching.entropy_threshold if cfg.entropy_threshold_calibrated else None}
    if args.train:
        info["training_memory"] = training_memory_info(model, args)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_tables(info, cfg)
        if args.train:
            print_training_memory(console(), info["training_memory"])
    return 0


COMMAND = Command(
    "info", help="config, parameter counts and FLOPs per byte",
    run=run, arguments=(
        arg("--model", group="source", metavar="DIR"),
        arg("--preset", group="source", choices=list(PRESETS)),
        arg("--config", metavar="FILE"),
        arg("--patch-size", type=number(float, 1), metavar="S",
            help="mean patch size for the FLOPs estimate (default: the config's target)"),
        arg("--json", action="store_true"),
        *TRAIN_ARGUMENTS,
    ))
