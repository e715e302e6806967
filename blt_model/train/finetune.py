"""`finetune`: continue training a model this project loads (its own format or transformers
format) on your text, with the loop of `blt train` (loop.py: budgets, early stopping, atomic
best/ and last/, resume) and either the plain/DDP strategy or FSDP2 sharding (sharding.py).

Fine-tuning defaults (`FINETUNE_DEFAULTS`, any of them overridable): a peak learning rate of
1e-4 (a tenth of training from scratch: the weights are already good, large steps undo them),
20 warmup steps (at most a tenth of `max_steps`), cosine decay to 10% of the peak, weight decay 0 (no pull towards zero from
weights that were never near zero), batches of 8 windows of 512 ids, validation every 50 steps
and early stopping after 3 validations without improvement. With a step or time budget and no
`num_epochs`, the data is repeated until the budget ends.

Freezing: the entropy model is always frozen unless `train_entropy_model` (it decides patches,
and patches must not move under the model); `freeze` may add "global" (the global transformer)
and "hash_embeddings" (the hash n-gram tables: most of the parameters of a large BLT).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..io.checkpoint import load_model
from ..io.files import atomic_write_text
from ..nn.model import BLT
from .config import TrainingConfig
from .data import split_documents
from .distributed import setup_distributed, world_info
from .documents import DataError, DataStats
from .errors import RunFileError
from .examples import FinetuneDataset, make_pair_loader, read_finetune_data, split_examples
from .loop import OnStep, Stage, fit
from .reporting import SILENT, DataSummary, TrainingReporter
from .stages import _prepare_out_dir
from .state import STATE_NAME
from .strategy import TrainingStrategy, checkpoint_blocks

__all__ = ["FINETUNE_DEFAULTS", "FREEZABLE", "FinetuneOptions", "FinetuneResult", "apply_freezing", "finetune",
           "finetune_config"]

FINETUNE_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4, "warmup_steps": 20, "min_lr_ratio": 0.1, "weight_decay": 0.0, "batch_size": 8,
    "eval_batch_size": 8, "max_sequence_length": 512, "eval_interval": 50, "patience": 3,
}
FREEZABLE = ("global", "hash_embeddings")
_REPEAT_EPOCHS = 1_000_000  # "until the budget ends"


@dataclass
class FinetuneOptions:
    """What is trained and how it is spread over processes."""

    freeze: tuple[str, ...] = ()  # any of FREEZABLE
    train_entropy_model: bool = False
    shard: bool = False  # FSDP2 (sharding.py); else one process or DDP
    activation_checkpointing: bool = False  # recompute block activations in the backward pass

    def __post_init__(self) -> None:
        self.freeze = tuple(self.freeze)
        bad = [f for f in self.freeze if f not in FREEZABLE]
        if bad:
            raise ValueError(f"freeze: unknown component {bad[0]!r} (known: {', '.join(FREEZABLE)})")
        if self.shard and self.train_entropy_model:
            raise ValueError("the entropy model stays frozen with shard=True (it is not sharded)")


@dataclass
class FinetuneResult:
    model: BLT
    best_val_loss: float
    out_dir: Path
    train_stats: DataStats
    valid_stats: DataStats | None
    notes: list[str] = field(default_factory=list)


def finetune_config(training: TrainingConfig | dict[str, Any] | None = None,
                    max_sequence_length: int | None = None) -> TrainingConfig:
    """FINETUNE_DEFAULTS under `training` (a dict of TrainingConfig fields wins; a TrainingConfig
    is taken as it is). `max_sequence_length` caps the default window (the model's positions)."""
    if isinstance(training, TrainingConfig):
        return training
    given = dict(training or {})
    merged = {**FINETUNE_DEFAULTS, **given}
    if max_sequence_length is not None and "max_sequence_length" not in given:
        merged["max_sequence_length"] = min(merged["max_sequence_length"], max_sequence_length)
    if "warmup_steps" not in given and merged.get("max_steps"):  # a short run is not all warmup
        merged["warmup_steps"] = min(merged["warmup_steps"], max(1, merged["max_steps"] // 10))
    if "num_epochs" not in given and (merged.get("max_steps") or merged.get("max_minutes")):
        merged["num_epochs"] = _REPEAT_EPOCHS
    return TrainingConfig.from_dict(merged)


def apply_freezing(model: BLT, options: FinetuneOptions) -> None:
    """requires_grad per component: the entropy model (unless trained) and `options.freeze`."""
    model.requires_grad_(True)
    model.freeze_entropy_model(not options.train_entropy_model)
    if "global" in options.freeze:
        model.global_model.requires_grad_(False)
    if "hash_embeddings" in options.freeze:
        model.encoder.hash_embed.requires_grad_(False)


@dataclass
class _Loaders:
    train: DataLoader
    valid: DataLoader | None
    summary: DataSummary


def _loaders(data: Any, valid: Any, cfg: TrainingConfig) -> _Loaders:
    """Read everything before training; hold out validation data unless `valid` is given."""
    train_data = read_finetune_data(data, allow_binary=cfg.allow_binary)
    texts, examples = train_data.texts, train_data.examples
    valid_stats = None
    if valid:
        held = read_finetune_data(valid, allow_binary=cfg.allow_binary)
        v_texts, v_examples, valid_stats = held.texts, held.examples, held.stats
    else:
        texts, v_texts = split_documents(texts, cfg.valid_fraction) if texts else ([], [])
        examples, v_examples = split_examples(examples, cfg.valid_fraction, cfg.seed)
    seq = cfg.max_sequence_length
    train_ds = FinetuneDataset(texts, examples, seq, mode="train", seed=cfg.seed)
    valid_ds = FinetuneDataset(v_texts, v_examples, seq, mode="eval")
    if len(train_ds) == 0:
        raise DataError(f"no training data left ({train_data.stats.summary()})")
    valid_loader = make_pair_loader(valid_ds, cfg.eval_batch_size, train=False) if len(valid_ds) else None
    summary = DataSummary(train_data.stats, valid_stats, valid_ds.num_bytes, 0, 1)
    return _Loaders(make_pair_loader(train_ds, cfg.batch_size, train=True, seed=cfg.seed), valid_loader, summary)


def _load(model: str | os.PathLike | BLT, dev: torch.device) -> tuple[BLT, str]:
    if isinstance(model, BLT):
        return model.to(dev), "a BLT object"
    return load_model(model, device=dev), os.fspath(model)


def _strategy(options: FinetuneOptions, cfg: TrainingConfig, dev: torch.device) -> TrainingStrategy:
    if not options.shard:
        return TrainingStrategy()
    from .sharding import ShardedStrategy  # torch.distributed.checkpoint: imported when used
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and dev.type == "cuda"
                                       and torch.cuda.is_bf16_supported())
    return ShardedStrategy(mixed_precision=bf16, activation_checkpointing=options.activation_checkpointing)


def _check_resume(out: Path, shard: bool) -> None:
    """A run's resume state is state.pt or (sharded) state-sharded.json: resume it the same way."""
    from .sharding import POINTER_NAME

    mine, other = (POINTER_NAME, STATE_NAME) if shard else (STATE_NAME, POINTER_NAME)
    if not (out / mine).exists() and (out / other).exists():
        raise RunFileError(f"{out}: the run was {'' if shard else 'not '}sharded; resume it "
                           f"{'without' if shard else 'with'} --shard")


def finetune(model: str | os.PathLike | BLT, data: str | os.PathLike | Sequence[str | os.PathLike],
             valid: str | os.PathLike | Sequence[str | os.PathLike] | None = None, *,
             out_dir: str | os.PathLike, training: TrainingConfig | dict[str, Any] | None = None,
             options: FinetuneOptions | None = None, device: str | torch.device | None = None,
             resume: bool = False, overwrite: bool = False, on_step: OnStep | None = None,
             reporter: TrainingReporter | None = None) -> FinetuneResult:
    """Fine-tune `model` (a model directory or a BLT) on `data` -> the best model, also in
    `out_dir/best/` (`out_dir/last/` the latest; `resume=True` continues an interrupted run).

    Data: text files, directories, globs, hf:NAME sources and .jsonl files whose lines hold
    `text` (every byte scored) or `prompt` and `completion` (only the completion scored).
    `training` overrides FINETUNE_DEFAULTS. Under torchrun, `options.shard` trains with FSDP2.
    """
    options = options or FinetuneOptions()
    out = Path(out_dir)
    dev = setup_distributed(device)
    main = world_info()[0] == 0
    reporter = (reporter or SILENT) if main else SILENT
    notes = _prepare_out_dir(out, resume, overwrite, reporter)
    if resume:
        _check_resume(out, options.shard)
    blt, source = _load(model, dev)
    cfg = finetune_config(training, blt.config.max_position_embeddings)
    if cfg.max_sequence_length > blt.config.max_position_embeddings:
        raise ValueError(f"max_sequence_length {cfg.max_sequence_length} exceeds the model's "
                         f"max_position_embeddings {blt.config.max_position_embeddings}")
    loaders = _loaders(data, valid, cfg)
    reporter.on_data(loaders.summary)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "run.json", json.dumps(
            {"finetune": {"model": source, **asdict(options)}, "training": cfg.to_dict()}, indent=2) + "\n")
    torch.manual_seed(cfg.seed)
    apply_freezing(blt, options)
    if options.activation_checkpointing and not options.shard:  # (the sharded strategy applies it itself)
        checkpoint_blocks(blt)
    blt.train()
    stage = Stage("finetune", blt, blt, _strategy(options, cfg, dev))
    best = fit(stage, loaders.train, loaders.valid, cfg, num_epochs=cfg.num_epochs, out_dir=out, resume=resume,
               on_step=on_step, reporter=reporter)
    return FinetuneResult(blt, best, out, loaders.summary.train, loaders.summary.valid, notes)
