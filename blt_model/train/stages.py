"""`train`: from plain files to a trained BLT, in the paper's stages. Each stage is resumable.

  data         read and check every source; hold out validation bytes unless given
  entropy      train the small entropy model (DIR/entropy/), unless one is given
  calibration  pick the entropy threshold giving the target mean patch size
  blt          train the BLT with patches from the frozen entropy model (DIR/)

Multi-process: run the same command under `torchrun --nproc-per-node N`; the process group is
set up from the environment (gloo on CPU, NCCL on CUDA) and only rank 0 writes or reports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..config import BLTConfig
from ..guards import check_memory, format_bytes, read_regular_file
from ..ids import OFFSET
from ..io.checkpoint import (
    load_model,
    meta_model,
    prepare_output_dir,
    remove_temp_files,
)
from ..io.files import atomic_write_text
from ..nn.model import BLT
from ..patching import calibrate_threshold
from .config import TrainingConfig, as_config
from .data import ByteDataset, DataError, DataStats, make_loader, read_documents, split_documents
from .distributed import barrier, broadcast_from_main, setup_distributed, world_info
from .errors import RunFileError
from .loop import OnStep, train_entropy_model, train_model
from .reporting import SILENT, DataSummary, TrainingReporter

__all__ = ["TrainResult", "calibrate_entropy_threshold", "train"]

_MAX_RUN_FILE = 4 << 20  # run.json / done.json hold a config: a few KB
_MIN_SMALL_WINDOW = 32  # bytes per window below which a byte model learns little


@dataclass
class TrainResult:
    model: BLT
    best_val_loss: float
    out_dir: Path
    entropy_threshold: float | None
    entropy_best_val_loss: float | None
    train_stats: DataStats
    valid_stats: DataStats | None
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. small data, old run moved aside


def train(
    data: str | os.PathLike | Sequence[str | os.PathLike],
    valid: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    out_dir: str | os.PathLike,
    model_config: BLTConfig | None = None,
    training: TrainingConfig | dict[str, Any] | None = None,
    entropy_model: str | os.PathLike | BLT | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_step: OnStep | None = None,
    reporter: TrainingReporter | None = None,
) -> TrainResult:
    """From plain files to a trained BLT in `out_dir/best/`.

    1. Read `data` (files, directories, globs, .jsonl, hf:NAME) and `valid` (or hold out the tail
       of every training document); every source is checked before training starts.
    2. Train the entropy model (unless `entropy_model`, a model directory or BLT, is given) and
       calibrate the entropy threshold to `model_config.target_mean_patch_size`.
    3. Train the BLT with patches from the frozen entropy model.
    `resume=True` continues an interrupted run in `out_dir` (its stored model config is used).
    An `out_dir` that already holds a model or a run is refused unless `resume` or `overwrite`
    (which moves it aside to `NAME.old-TIMESTAMP`, never deleting it). Temporary files left by
    killed saves are removed when the run starts or resumes. `reporter` hears what happens
    (nothing is printed); `on_step(step, loss)` returning True stops the BLT stage, resumably.
    """
    cfg = as_config(training)
    out = Path(out_dir)
    dev = setup_distributed(device)
    reporter = (reporter or SILENT) if world_info()[0] == 0 else SILENT
    notes = _prepare_out_dir(out, resume, overwrite, reporter)
    model_config = _model_config(out, model_config, cfg, resume)
    data_ = _read_data(data, valid, cfg, reporter)
    cfg = data_.cfg
    notes += [data_.note] if data_.note else []
    model = _build_model(model_config, cfg, dev, out, resume)
    entropy_best = _entropy_stage(model, data_, out, entropy_model, resume, reporter)
    threshold = _calibration_stage(model, data_, out, resume, reporter)
    model, best = train_model(model, data_.train_loader, data_.valid_loader, cfg, cfg.num_epochs, out_dir=out,
                              resume=resume, on_step=on_step, reporter=reporter)
    return TrainResult(model, best, out, threshold, entropy_best, data_.train_stats, data_.valid_stats, notes)


# --- the run directory and its model config ------------------------------------------------------

def _prepare_out_dir(out: Path, resume: bool, overwrite: bool, reporter: TrainingReporter) -> list[str]:
    """Move an old run aside (--overwrite), remove temporary files of killed saves -> notes."""
    main = world_info()[0] == 0
    notes: list[str] = []
    moved = prepare_output_dir(out, resume=resume, overwrite=overwrite, move=main)
    barrier()  # the other ranks start once rank 0 has moved the old run aside
    if moved is not None:
        notes.append(f"the previous contents of {out} were moved to {moved}")
    if main:
        n, size = remove_temp_files(out)
        if n:
            notes.append(f"removed {n} temporary file(s) ({format_bytes(size)}) left by interrupted saves")
    for note in notes:
        reporter.on_note(note)
    return notes


def _model_config(out: Path, given: BLTConfig | None, cfg: TrainingConfig, resume: bool) -> BLTConfig:
    """The model config: a resumed run keeps its own (with its calibrated threshold)."""
    if resume:
        stored = _read_run_file(out)
        # the stored config holds the calibrated threshold; compare everything else
        if given is not None and given.without_calibration() != stored.without_calibration():
            raise ValueError(f"{out}: the run was started with a different model config; "
                             "resume without --preset/--config or use a new --out")
        given = stored
    model_config = given or BLTConfig.preset("tiny")
    if cfg.max_sequence_length > model_config.max_position_embeddings:
        raise ValueError(f"max_sequence_length {cfg.max_sequence_length} exceeds the model's "
                         f"max_position_embeddings {model_config.max_position_embeddings}")
    return model_config


def _read_run_file(out: Path) -> BLTConfig:
    run_file = out / "run.json"
    if not run_file.exists():
        raise RunFileError(f"{out}: nothing to resume (no run.json; start without --resume)")
    try:
        stored = json.loads(read_regular_file(run_file, _MAX_RUN_FILE).decode("utf-8"))
        return BLTConfig.from_dict(stored["model"])
    except (OSError, KeyError, ValueError, TypeError, RecursionError) as e:
        raise RunFileError(f"{run_file}: unreadable run description ({e})") from None


def _write_run_file(out: Path, model_config: BLTConfig, cfg: TrainingConfig) -> None:
    atomic_write_text(out / "run.json", json.dumps({"model": model_config.to_dict(), "training": cfg.to_dict()},
                                                   indent=2) + "\n")


def _build_model(model_config: BLTConfig, cfg: TrainingConfig, dev: torch.device, out: Path,
                 resume: bool) -> BLT:
    # weights, gradients and AdamW's two moments: refuse a config that cannot fit before building it
    if dev.type == "cpu":  # (a GPU's memory is its own; CUDA reports running out itself)
        count = meta_model(model_config).num_parameters()
        check_memory(16 * count, f"the model config ({count:,} parameters; weights, gradients and optimizer state)")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = BLT(model_config).to(dev)
    if world_info()[0] == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            _write_run_file(out, model_config, cfg)
    return model


# --- stage: data ---------------------------------------------------------------------------------

@dataclass
class _Data:
    docs: list[bytes]  # the training documents (calibration reads them too)
    train_loader: DataLoader
    valid_loader: DataLoader
    train_stats: DataStats
    valid_stats: DataStats | None
    cfg: TrainingConfig  # windows and batches fitted to small data
    note: str | None  # what was fitted, if anything


def _read_data(data: Any, valid: Any, cfg: TrainingConfig, reporter: TrainingReporter) -> _Data:
    """Read and check everything before any training."""
    docs, train_stats = read_documents(data, min_length=1, allow_binary=cfg.allow_binary)
    valid_stats = None
    if valid:
        valid_docs, valid_stats = read_documents(valid, min_length=1, allow_binary=cfg.allow_binary)
    else:
        docs, valid_docs = split_documents(docs, cfg.valid_fraction)
    train_ds = ByteDataset(docs, cfg.max_sequence_length, cfg.min_text_length, mode="train", seed=cfg.seed)
    if len(train_ds) == 0:
        raise DataError(f"no training document has at least min_text_length={cfg.min_text_length} bytes "
                        f"({train_ds.stats.summary()})")
    cfg, train_ds, small = _fit_to_small_data(docs, train_ds, cfg)
    if small:
        reporter.on_note(small, warning=True)
    valid_ds = ByteDataset(valid_docs, cfg.max_sequence_length, 1, mode="eval")
    reporter.on_data(DataSummary(train_stats, valid_stats, valid_ds.num_bytes, train_ds.stats.skipped_short,
                                 cfg.min_text_length))
    return _Data(docs, make_loader(train_ds, cfg.batch_size, train=True, seed=cfg.seed),
                 make_loader(valid_ds, cfg.eval_batch_size, train=False), train_stats, valid_stats, cfg, small)


def _fit_to_small_data(docs: list[bytes], train_ds: ByteDataset, cfg: TrainingConfig
                       ) -> tuple[TrainingConfig, ByteDataset, str | None]:
    """Data too small for one batch of full windows (a user's first try on a small file):
    shorter windows, then smaller batches, until an epoch has a batch -> (cfg, dataset, note)."""
    def batches(ds: ByteDataset, bs: int) -> int:
        return len(make_loader(ds, bs, train=True, seed=cfg.seed))

    if batches(train_ds, cfg.batch_size):
        return cfg, train_ds, None
    n_bytes = train_ds.num_bytes
    seq = max(_MIN_SMALL_WINDOW + 1, min(cfg.max_sequence_length, n_bytes // cfg.batch_size + 1))
    seq = min(seq, cfg.max_sequence_length)
    ds = ByteDataset(docs, seq, cfg.min_text_length, mode="train", seed=cfg.seed)
    bs = cfg.batch_size
    while bs > 1 and not batches(ds, bs):
        bs = max(1, min(bs - 1, len(ds)))
    if not batches(ds, bs):
        raise DataError(f"the training data yields no batches ({train_ds.stats.summary()})")
    note = (f"small data: only {n_bytes:,} training bytes, so windows of {seq - 1} bytes (asked "
            f"{cfg.max_sequence_length - 1}) and batches of {bs} (asked {cfg.batch_size}), "
            f"{batches(ds, bs)} batch(es) per epoch; more text gives a better model")
    return cfg.replace(max_sequence_length=seq, batch_size=bs), ds, note


# --- stage: entropy model ------------------------------------------------------------------------

def _stage_budget(cfg: TrainingConfig) -> TrainingConfig:
    """Stage 1's budgets and learning rate: its own, else a quarter of the BLT's budgets."""
    steps = cfg.entropy_max_steps or (max(1, cfg.max_steps // 4) if cfg.max_steps else None)
    minutes = cfg.entropy_max_minutes or (cfg.max_minutes / 4 if cfg.max_minutes else None)
    changes: dict[str, Any] = {"max_steps": steps, "max_minutes": minutes, "schedule_steps": None}
    if cfg.entropy_learning_rate is not None:
        changes["learning_rate"] = cfg.entropy_learning_rate
    return cfg.replace(**changes)


def _entropy_stage(model: BLT, data: _Data, out: Path, given: str | os.PathLike | BLT | None, resume: bool,
                   reporter: TrainingReporter) -> float | None:
    """Give `model` its entropy model: the given one, a finished stage 1, or a new stage 1 in
    DIR/entropy/ -> stage 1's best validation loss (None when it did not run here)."""
    entropy_dir = out / "entropy"
    done_file = entropy_dir / "done.json"
    if given is not None:
        src = given if isinstance(given, BLT) else load_model(given)
        try:
            model.entropy_model.load_state_dict(src.entropy_model.state_dict())
        except RuntimeError as e:
            raise ValueError(f"the given entropy model does not fit this model config ({e})") from None
        return None
    if not model.config.patching.needs_entropies:
        return None  # fixed / space patching: no entropy model needed
    if resume and done_file.exists():
        try:
            done = json.loads(read_regular_file(done_file, _MAX_RUN_FILE).decode("utf-8"))
            if not isinstance(done, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError, RecursionError) as e:
            raise RunFileError(f"{done_file}: unreadable ({e})") from None
        model.entropy_model.load_state_dict(load_model(entropy_dir / "best").entropy_model.state_dict())
        return done.get("best_val_loss")
    _, best = train_entropy_model(model, data.train_loader, data.valid_loader, _stage_budget(data.cfg),
                                  out_dir=entropy_dir, resume=resume, reporter=reporter)
    if world_info()[0] == 0:
        atomic_write_text(done_file, json.dumps({"best_val_loss": best}) + "\n")
    barrier()
    return best


# --- stage: threshold calibration ----------------------------------------------------------------

def _calibration_stage(model: BLT, data: _Data, out: Path, resume: bool, reporter: TrainingReporter
                       ) -> float | None:
    """The entropy threshold (None for fixed or space patching); a resumed run keeps its own."""
    model_config, cfg = model.config, data.cfg
    if not model_config.patching.needs_entropies:
        return None
    if resume and model_config.entropy_threshold_calibrated:
        return model_config.patching.entropy_threshold
    calib = ByteDataset(data.docs, cfg.max_sequence_length, 1, mode="eval")
    threshold = calibrate_entropy_threshold(
        model, make_loader(calib, cfg.eval_batch_size, train=False, rank=0, world_size=1),
        model_config.target_mean_patch_size, cfg.calibration_batches)
    reporter.on_note(f"entropy threshold {threshold:.4f} nats for a target mean patch size of "
                     f"{model_config.target_mean_patch_size}")
    if world_info()[0] == 0:
        # a resumed run must reuse this threshold, not recalibrate on a changed model
        _write_run_file(out, model.config, cfg)
    return threshold


@torch.no_grad()
def calibrate_entropy_threshold(model: BLT, batches: Iterable[torch.Tensor], target_mean_patch_size: float,
                                max_batches: int = 16) -> float:
    """Pick the entropy threshold giving `target_mean_patch_size` bytes per patch on `batches`,
    store it in `model.config` as its calibrated patching threshold and return it."""
    device = next(model.parameters()).device
    was = model.entropy_model.training
    model.entropy_model.eval()
    collected = []
    reset = model.config.patching.reset_context
    for i, ids in enumerate(batches):
        if i >= max_batches:
            break
        ids = ids.to(device)
        h = model.entropy_model.entropies(ids, reset_context=reset).float()
        # H[:, t] decides whether t + 1 starts a patch: keep it only where t + 1 is a real byte
        valid = torch.zeros_like(h, dtype=torch.bool)
        valid[:, :-1] = ids[:, 1:] >= OFFSET
        collected.append(h[valid].cpu())
    model.entropy_model.train(was)
    if not collected or sum(c.numel() for c in collected) == 0:
        raise DataError("no data to calibrate the entropy threshold on")
    theta = float(calibrate_threshold(torch.cat(collected), target_mean_patch_size))
    # identical on every process in theory; make it identical in fact
    theta = float(broadcast_from_main(torch.tensor([theta], dtype=torch.float64, device=device)))
    model.config.set_calibrated_threshold(theta)
    return theta
