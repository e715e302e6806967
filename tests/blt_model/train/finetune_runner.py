"""Run by test_finetune_sharded.py under torch.distributed.run: `finetune --shard` (with
activation checkpointing, which must not change the numbers) on the model, data and run
directory given, writing rank 0's per-step losses to a JSON file."""

from __future__ import annotations

import json
import sys

import torch


def main(base: str, data: str, out: str, losses_path: str, max_steps: str, batch_size: str) -> None:
    from blt_model.train.distributed import world_info
    from blt_model.train.finetune import FinetuneOptions, finetune

    torch.set_num_threads(1)
    losses: dict[int, float] = {}

    def on_step(step: int, loss: float) -> None:
        losses[step] = loss

    training = {"batch_size": int(batch_size), "eval_batch_size": 2, "max_sequence_length": 48,
                "eval_interval": 3, "learning_rate": 3e-3, "log_interval": 1, "max_steps": int(max_steps),
                "schedule_steps": 5, "warmup_steps": 1, "precision": "fp32"}
    finetune(base, data, out_dir=out, training=training, options=FinetuneOptions(shard=True, activation_checkpointing=True), on_step=on_step)
    if world_info()[0] == 0:
        with open(losses_path, "w", encoding="utf-8") as f:
            json.dump({"world": world_info()[1], "losses": losses}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
