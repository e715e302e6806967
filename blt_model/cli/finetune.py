"""`blt finetune`: continue training a model on your text (blt_model/train/finetune.py)."""

from __future__ import annotations

import argparse

from .arguments import COUNT, Command, arg, number
from .train import RUN_ARGUMENTS, print_run_result

__all__ = ["COMMAND", "run"]

_OPTIONS = {  # command-line option -> TrainingConfig field
    "max_steps": "max_steps", "max_minutes": "max_minutes", "seed": "seed", "batch_size": "batch_size",
    "eval_batch_size": "eval_batch_size", "seq_len": "max_sequence_length", "grad_accum": "gradient_accumulation_steps",
    "lr": "learning_rate", "epochs": "num_epochs", "warmup_steps": "warmup_steps", "eval_interval": "eval_interval",
    "patience": "patience", "precision": "precision", "weight_decay": "weight_decay",
}


def _training(args: argparse.Namespace) -> dict:
    """The options given on the command line (the rest: FINETUNE_DEFAULTS)."""
    training = {field: getattr(args, opt) for opt, field in _OPTIONS.items() if getattr(args, opt) is not None}
    if args.allow_binary:
        training["allow_binary"] = True
    if args.no_progress:
        training["progress"] = False
    return training


def run(args: argparse.Namespace) -> int:
    """Fine-tune a model directory (this project's format or transformers format) on text files
    and JSON Lines ('text', or 'prompt'/'completion' with the loss on the completion only).
    Defaults suited to fine-tuning: learning rate 1e-4, 20 warmup steps, cosine decay to 10%,
    weight decay 0, batches of 8 x 512, validation every 50 steps, early stopping after 3
    without improvement. The entropy model stays frozen. Under torchrun, --shard trains with
    FSDP2 (weights, gradients and optimizer states split over the processes)."""
    from ..train import world_info
    from ..train.finetune import FinetuneOptions, finetune
    from .report import RichTrainingReporter

    freeze = tuple(f.replace("-", "_") for f in args.freeze or ())
    options = FinetuneOptions(freeze=freeze, train_entropy_model=args.train_entropy_model, shard=args.shard,
                              activation_checkpointing=args.activation_checkpointing)
    result = finetune(args.model, args.data, args.valid, out_dir=args.out, training=_training(args), options=options,
                      device=args.device, resume=args.resume, overwrite=args.overwrite,
                      reporter=None if args.no_progress else RichTrainingReporter())
    if world_info()[0] == 0:
        print_run_result(result)
    return 0


COMMAND = Command(
    "finetune", help="continue training a model on your own text",
    run=run, arguments=(
        arg("--model", required=True, metavar="DIR", help="the model to start from"),
        arg("--data", nargs="+", required=True, metavar="PATH",
            help="text files, directories, globs, .jsonl files ('text' or 'prompt'+'completion'), hf:NAME"),
        arg("--valid", nargs="+", metavar="PATH",
            help="validation data (default: 5%% held out of the training data)"),
        arg("--out", required=True, metavar="DIR", help="run directory (best/, last/, resume state)"),
        arg("--max-steps", type=COUNT, metavar="N", help="stop after N optimizer steps"),
        arg("--max-minutes", type=number(float, 0, above=True), metavar="M",
            help="stop after M minutes (counted over --resume too); the learning rate decays over the budget"),
        arg("--freeze", nargs="+", choices=["global", "hash-embeddings"],
            help="also freeze the global transformer and/or the hash n-gram embeddings"),
        arg("--train-entropy-model", action="store_true", help="train the entropy model too (not with --shard)"),
        arg("--shard", action="store_true", help="under torchrun: FSDP2 sharding (else DDP)"),
        arg("--activation-checkpointing", action="store_true",
            help="recompute each block's activations in the backward pass (less memory, more compute)"),
        arg("--precision", choices=["auto", "bf16", "fp32"],
            help="bf16: autocast, or with --shard bf16 compute on fp32 master weights (auto: bf16 on CUDA)"),
        *RUN_ARGUMENTS,
        arg("--batch-size", type=COUNT, metavar="B", help="sequences per step and process (default 8)"),
        arg("--eval-batch-size", type=COUNT, metavar="B"),
        arg("--seq-len", type=number(int, 2), metavar="L", help="ids per sequence (default 512)"),
        arg("--grad-accum", type=COUNT, metavar="K", help="gradient accumulation steps"),
        arg("--lr", type=number(float, 0, above=True), help="peak learning rate (default 1e-4)"),
        arg("--weight-decay", type=number(float, 0), help="AdamW weight decay (default 0)"),
        arg("--epochs", type=COUNT, help="passes over the data (default: 1, or until --max-steps/--max-minutes)"),
        arg("--warmup-steps", type=number(int, 0), help="default 20"),
        arg("--eval-interval", type=COUNT, metavar="N", help="validate and save every N steps (default 50)"),
        arg("--patience", type=number(int, 0), help="validations without improvement before stopping (default 3)"),
        arg("--allow-binary", action="store_true", help="train on binary files too (as bytes)"),
        arg("--no-progress", action="store_true", help="no progress bar or tables"),
    ))
