"""`blt train`: the entropy model, the patching threshold, then the BLT (blt_model/train/stages.py)."""

from __future__ import annotations

import argparse
import math

from ..config import PRESETS
from .arguments import COUNT, SEED, Command, arg, number
from .commands import console, load_configs
from .style import markup_safe

__all__ = ["COMMAND", "run"]


def _training_config(args: argparse.Namespace, training: dict):
    """--config's training section with the command line's options on top."""
    from ..train import TrainingConfig

    overrides = {
        "max_steps": args.max_steps, "max_minutes": args.max_minutes, "seed": args.seed,
        "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
        "max_sequence_length": args.seq_len, "gradient_accumulation_steps": args.grad_accum,
        "learning_rate": args.lr, "num_epochs": args.epochs, "eval_interval": args.eval_interval,
        "patience": args.patience, "warmup_steps": args.warmup_steps,
        "min_text_length": args.min_text_length, "entropy_max_steps": args.entropy_steps,
        "precision": args.precision,
    }
    training.update({k: v for k, v in overrides.items() if v is not None})
    if args.allow_binary:
        training["allow_binary"] = True
    if args.compile:
        training["compile"] = True
    if args.no_progress:
        training["progress"] = False
    try:
        return TrainingConfig.from_dict(training)
    except (TypeError, ValueError) as e:  # name the file the bad value came from
        raise ValueError(f"{args.config}: {e}" if args.config else str(e)) from None


def run(args: argparse.Namespace) -> int:
    """Train the entropy model, calibrate the patching threshold, then train the BLT. Works on
    one process or under `torchrun --nproc-per-node N`."""
    from ..train import train, world_info
    from .report import RichTrainingReporter

    model_cfg, training = load_configs(args.config, args.preset)
    cfg = _training_config(args, training)
    if model_cfg is not None and args.target_patch_size is not None:
        model_cfg = model_cfg.replace(target_mean_patch_size=args.target_patch_size)
    elif args.target_patch_size is not None:
        from ..config import BLTConfig

        model_cfg = BLTConfig.preset("tiny").replace(target_mean_patch_size=args.target_patch_size)
    result = train(args.data, args.valid, out_dir=args.out, model_config=model_cfg, training=cfg,
                   entropy_model=args.entropy_model, device=args.device, resume=args.resume,
                   overwrite=args.overwrite, reporter=RichTrainingReporter() if cfg.progress else None)
    if world_info()[0] == 0:
        print_run_result(result)
    return 0


def print_run_result(result) -> None:
    """Notes, the best validation loss and where the models are (`blt train`, `blt finetune`)."""
    con = console()
    for note in result.notes:
        con.print(markup_safe(note))
    loss = result.best_val_loss
    if math.isfinite(loss):
        con.print(f"best validation: {loss:.4f} nats/byte = {loss / math.log(2):.4f} bits/byte")
    con.print(f"best model: {markup_safe(result.out_dir / 'best')}   "
              f"last model: {markup_safe(result.out_dir / 'last')}")


# the rows `blt finetune` shares
RUN_ARGUMENTS = (
    arg("--device", help="cpu, cuda or cuda:N (default: cuda if available)"),
    arg("--resume", group="again", action="store_true", help="continue the run in --out from its last state"),
    arg("--overwrite", group="again", action="store_true",
        help="--out holds a model or run: move it aside (to OUT.old-TIMESTAMP) and start anew"),
    arg("--seed", type=SEED, help="random seed (default 0)"),
)

COMMAND = Command(
    "train", help="train a model on text files (entropy model, then the BLT)",
    run=run, arguments=(
        arg("--data", nargs="+", required=True, metavar="PATH",
            help="text files, directories, globs, .jsonl files (field 'text') or hf:NAME?split=train"),
        arg("--valid", nargs="+", metavar="PATH",
            help="validation data (default: the last 5%% of every training document)"),
        arg("--preset", choices=list(PRESETS), help="model size preset (default: tiny)"),
        arg("--config", metavar="FILE",
            help="JSON model config, or {\"model\": {...}, \"training\": {...}}; overrides --preset"),
        arg("--out", required=True, metavar="DIR", help="run directory (best/ and last/ models land here)"),
        arg("--max-steps", type=COUNT, metavar="N", help="stop after N optimizer steps"),
        arg("--max-minutes", type=number(float, 0, above=True), metavar="M",
            help="stop after M minutes of training (counted over --resume too); "
            "the learning rate decays over this budget"),
        *RUN_ARGUMENTS,
        arg("--batch-size", type=COUNT, metavar="B", help="sequences per step and process"),
        arg("--eval-batch-size", type=COUNT, metavar="B"),
        arg("--seq-len", type=number(int, 2), metavar="L", help="ids per training sequence (BOS + L-1 bytes)"),
        arg("--grad-accum", type=COUNT, metavar="K", help="gradient accumulation steps"),
        arg("--lr", type=number(float, 0, above=True), help="peak learning rate"),
        arg("--epochs", type=COUNT),
        arg("--warmup-steps", type=number(int, 0)),
        arg("--eval-interval", type=COUNT, metavar="N", help="evaluate and save every N steps"),
        arg("--patience", type=number(int, 0), help="evaluations without improvement before stopping (0: never)"),
        arg("--min-text-length", type=COUNT, metavar="N", help="skip documents shorter than N bytes"),
        arg("--entropy-steps", type=COUNT, metavar="N",
            help="steps for the entropy model (default: a quarter of --max-steps)"),
        arg("--entropy-model", metavar="DIR", help="reuse the entropy model of this model directory"),
        arg("--target-patch-size", type=number(float, 1), metavar="S", help="mean patch size to calibrate for"),
        arg("--precision", choices=["auto", "bf16", "fp32"]),
        arg("--allow-binary", action="store_true", help="train on binary files too (as bytes)"),
        arg("--compile", action="store_true", help="torch.compile the model (CUDA)"),
        arg("--no-progress", action="store_true", help="no progress bar or tables"),
    ))
