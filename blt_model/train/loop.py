"""The training loop of one stage (the entropy model, or the BLT with its entropy model frozen).

A run directory holds, per stage (`train` puts the entropy stage in `DIR/entropy/`):
  best/         the model with the lowest validation loss (load with `load_model`)
  last/         the latest model
  state.pt      everything needed to resume (see state.py)
  metrics.jsonl one JSON object per log line / evaluation
Every file is written to a temporary name and renamed, so a kill at any moment leaves the
previous version readable. Under torchrun every process runs the loop; only rank 0 writes and
reports.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..inference.sampling import NonFiniteLogitsError
from ..io.files import fault_point
from ..nn.model import BLT
from .config import TrainingConfig, as_config
from .data import DataError, iter_from, set_epoch
from .distributed import broadcast_from_main, world_info
from .errors import TrainingError, TrainingInterrupted
from .evaluation import evaluate_loader
from .reporting import SILENT, StageOutcome, TrainingReporter
from .schedule import LearningRateSchedule
from .state import TrainState
from .step import Optimization, accumulate_gradients, gradient_norm
from .strategy import TrainingStrategy

__all__ = ["METRICS_NAME", "Stage", "fit", "train_entropy_model", "train_model"]

METRICS_NAME = "metrics.jsonl"
OnStep = Callable[[int, float], "bool | None"]  # (step, loss) -> True to stop


class MetricsLog:
    """Appends one JSON object per line to metrics.jsonl (nothing without a path)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")


@dataclass
class Stage:
    name: str
    target: nn.Module  # what is optimized and forwarded
    owner: BLT  # what is saved (the whole model)
    strategy: TrainingStrategy = field(default_factory=TrainingStrategy)  # wrapping, saving, resuming


@dataclass
class _Run:
    """One invocation of a stage: its state and everything the loop's functions share."""

    stage: Stage
    cfg: TrainingConfig
    state: TrainState
    opt: Optimization
    schedule: LearningRateSchedule
    run_dir: Path | None  # None: nothing is written (also on ranks other than 0)
    log: MetricsLog
    reporter: TrainingReporter
    val_loader: Iterable | None
    on_step: OnStep | None
    t_start: float  # this invocation's clock at the start
    elapsed_before: float  # training seconds of earlier invocations
    best_weights: dict[str, torch.Tensor] | None = None  # best seen in this invocation
    last_eval_step: int = -1


def _steps_per_epoch(loader: Iterable, accum: int) -> int | None:
    try:
        per_epoch = math.ceil(len(loader) / accum)  # type: ignore[arg-type]
    except TypeError:
        return None  # an iterable without a length
    if per_epoch == 0:
        raise DataError("the training data yields no batches")
    return per_epoch


def _start(stage: Stage, train_loader: Iterable, val_loader: Iterable | None, cfg: TrainingConfig, *,
           num_epochs: int, out_dir: str | os.PathLike | None, resume: bool, on_step: OnStep | None,
           reporter: TrainingReporter) -> tuple[_Run, int | None]:
    """Optimizer, resume state, wrapped model -> (the run, its total steps for a progress bar)."""
    main = world_info()[0] == 0
    run_dir = Path(out_dir) if out_dir is not None else None
    if not any(p.requires_grad for p in stage.target.parameters()):
        raise TrainingError(f"{stage.name}: the model has no trainable parameters")
    per_epoch = _steps_per_epoch(train_loader, cfg.gradient_accumulation_steps)
    resume_dir = run_dir if resume and run_dir is not None and stage.strategy.has_state(run_dir) else None
    opt, state = stage.strategy.prepare(stage.name, stage.target, stage.owner, cfg, resume_dir)
    run = _Run(stage, cfg, state, opt,
               LearningRateSchedule.for_run(cfg, per_epoch, num_epochs), run_dir,
               MetricsLog(run_dir / METRICS_NAME if (run_dir and main) else None),
               reporter if main else SILENT, val_loader, on_step,
               t_start=time.perf_counter(), elapsed_before=float(state.elapsed_s))
    if cfg.max_steps:
        return run, cfg.max_steps
    # a time budget alone (fine-tuning repeats the data until it ends): no step total to show
    return run, (per_epoch * num_epochs if per_epoch and cfg.max_minutes is None else None)


def _count_elapsed(run: _Run) -> None:
    run.state.elapsed_s = run.elapsed_before + (time.perf_counter() - run.t_start)


def _out_of_time(run: _Run) -> bool:
    """The wall-clock budget is spent (counted over every invocation of the run)."""
    if run.schedule.budget_s is None:
        return False
    deadline = run.t_start + run.schedule.budget_s - run.elapsed_before
    # every rank must stop at the same step: rank 0's clock decides
    late = torch.tensor([float(time.perf_counter() >= deadline)], device=run.opt.device)
    return bool(broadcast_from_main(late).item())


# --- saving --------------------------------------------------------------------------------------

def _writes(run: _Run) -> bool:
    return run.run_dir is not None and world_info()[0] == 0


def _save(run: _Run, kind: str) -> None:
    if run.run_dir is not None:  # every process takes part (a sharded model is gathered)
        run.stage.strategy.save_model(run.stage.owner, run.run_dir / kind, write=_writes(run))


def _save_state(run: _Run) -> None:
    if run.run_dir is not None:
        _count_elapsed(run)
        run.stage.strategy.save_state(run.run_dir, run.stage.name, run.state, run.stage.owner, run.opt, run.cfg,
                                      write=_writes(run))


def _checkpoint(run: _Run) -> None:
    """last/ then state.pt: a kill between them resumes from the previous state, never a newer one."""
    _save(run, "last")
    fault_point("between_weights_and_state")
    _save_state(run)


@contextlib.contextmanager
def _save_on_interrupt(run: _Run) -> Iterator[None]:
    """Ctrl+C: save last/ and the resume state, then raise TrainingInterrupted. A second Ctrl+C
    during that save still leaves the previous files whole (every write is atomic)."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        if not _writes(run) or run.stage.strategy.collective:
            raise
        _save(run, "last")
        _save_state(run)
        raise TrainingInterrupted(run.run_dir) from None


# --- one step, one evaluation --------------------------------------------------------------------

def _evaluate(run: _Run) -> None:
    """Validate; keep (and save as best/) the weights with the lowest loss so far."""
    run.last_eval_step = run.state.step
    if run.val_loader is None:
        return
    s, name = run.state, run.stage.name
    try:
        metrics = evaluate_loader(run.stage.target, run.val_loader, device=run.opt.device,
                                  max_batches=run.cfg.eval_max_batches, autocast_dtype=run.opt.amp_dtype)
    except NonFiniteLogitsError as e:
        where = f"; the last good checkpoint is in {run.run_dir}" if run.run_dir else ""
        raise TrainingError(f"{name}: validation at step {s.step}: {e}{where}") from None
    run.log.write({"stage": name, "step": s.step, "eval": metrics})
    run.reporter.on_validation(name, s.step, metrics)
    if metrics["loss"] < s.best_val_loss - 1e-9:
        s.best_val_loss = metrics["loss"]
        s.bad_evals = 0
        run.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in run.stage.owner.state_dict().items()}
        _save(run, "best")
    else:
        s.bad_evals += 1


def _skip_nonfinite(run: _Run) -> None:
    """No update, keep counting; too many in a row is a broken run."""
    s, name = run.state, run.stage.name
    run.opt.optimizer.zero_grad(set_to_none=True)
    s.nonfinite_steps += 1
    s.consecutive_nonfinite += 1
    run.log.write({"stage": name, "step": s.step, "skipped": "non-finite loss or gradient"})
    if s.consecutive_nonfinite >= run.cfg.max_nonfinite_steps:
        where = f"; the last good checkpoint is in {run.run_dir}" if run.run_dir else ""
        raise TrainingError(f"{name}: {s.consecutive_nonfinite} steps in a row had a non-finite loss "
                            f"or gradient (step {s.step}); try a lower learning rate{where}")


def _take_step(run: _Run, batches: list[torch.Tensor]) -> float | None:
    """One optimizer step over `batches` -> its loss; None when skipped (no targets, non-finite)."""
    s, opt = run.state, run.opt
    s.batch_in_epoch += len(batches)
    loss, n_bytes = accumulate_gradients(opt, batches, s, run.reporter)
    if n_bytes == 0:
        return None
    norm = gradient_norm(opt)  # clips
    if not (math.isfinite(loss) and math.isfinite(norm)):
        _skip_nonfinite(run)
        return None
    s.consecutive_nonfinite = 0
    _count_elapsed(run)
    lr = run.schedule.lr(s.step, s.elapsed_s)
    for group in opt.optimizer.param_groups:
        group["lr"] = lr
    opt.optimizer.step()
    opt.optimizer.zero_grad(set_to_none=True)
    s.step += 1
    s.bytes_seen += n_bytes
    run.reporter.on_step(s.step, loss, n_bytes, lr)
    if s.step % run.cfg.log_interval == 0 or s.step == 1:
        run.log.write({"stage": run.stage.name, "step": s.step, "epoch": s.epoch, "loss": loss,
                       "bits_per_byte": loss / math.log(2), "lr": lr, "bytes": n_bytes,
                       "elapsed_s": round(time.perf_counter() - run.t_start, 3)})
    return loss


def _after_step(run: _Run, loss: float) -> str | None:
    """Callback, periodic evaluation and checkpoint, budgets -> why to stop, or None."""
    s, cfg = run.state, run.cfg
    want_stop = bool(run.on_step(s.step, loss)) if run.on_step is not None else False
    if s.step % cfg.eval_interval == 0:
        _evaluate(run)
        _checkpoint(run)
        if cfg.patience and s.bad_evals >= cfg.patience:
            return "early_stop"
    if want_stop:
        return "callback"
    if cfg.max_steps is not None and s.step >= cfg.max_steps:
        return "max_steps"
    if _out_of_time(run):
        return "max_minutes"
    return None


# --- the stage -----------------------------------------------------------------------------------

def _groups(batches: Iterator[torch.Tensor], size: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive groups of `size` batches (one optimizer step each); the last may be shorter."""
    while group := list(itertools.islice(batches, size)):
        yield group
        if len(group) < size:
            return


def _run_epochs(run: _Run, train_loader: Iterable, num_epochs: int) -> str:
    """Train until an epoch budget, a step or time budget, early stopping or the callback -> why."""
    s = run.state
    while s.epoch < num_epochs:
        set_epoch(train_loader, s.epoch)
        for batches in _groups(iter(iter_from(train_loader, s.batch_in_epoch)), run.cfg.gradient_accumulation_steps):
            loss = _take_step(run, batches)
            reason = None if loss is None else _after_step(run, loss)
            if reason is not None:
                return reason
        s.epoch += 1
        s.batch_in_epoch = 0
    return "epochs"


def _finish(run: _Run) -> None:
    """Validate the last step (unless just done), save last/ and the state; best/ = last/ without
    validation data."""
    if run.last_eval_step != run.state.step:
        _evaluate(run)
    _checkpoint(run)
    if run.val_loader is None:
        _save(run, "best")


def _restore_best(run: _Run) -> None:
    # the returned model is the best one seen (early stopping semantics)
    if run.best_weights is not None:
        current = run.stage.owner.state_dict()
        run.stage.owner.load_state_dict({k: run.best_weights[k].to(current[k].device) for k in current})


def fit(stage: Stage, train_loader: Iterable, val_loader: Iterable | None, cfg: TrainingConfig, *,
        num_epochs: int, out_dir: str | os.PathLike | None = None, resume: bool = False,
        on_step: OnStep | None = None, reporter: TrainingReporter | None = None) -> float:
    """Train `stage` (resuming from `out_dir/state.pt` if asked) -> the best validation loss;
    the stage's model ends holding the best weights seen."""
    run, total = _start(stage, train_loader, val_loader, cfg, num_epochs=num_epochs, out_dir=out_dir,
                        resume=resume, on_step=on_step, reporter=reporter or SILENT)
    run.reporter.on_stage(stage.name, total, run.state.step)
    outcome = None
    try:
        with _save_on_interrupt(run):
            reason = _run_epochs(run, train_loader, num_epochs)
            _finish(run)
        _restore_best(run)
        s = run.state
        outcome = StageOutcome(reason, s.step, s.best_val_loss, s.nonfinite_steps)
    finally:
        run.reporter.on_stage_end(stage.name, outcome)
    return run.state.best_val_loss


def train_model(model: BLT, train_loader: Iterable, val_loader: Iterable | None,
                config: TrainingConfig | dict[str, Any] | None = None, num_epochs: int | None = None, *,
                out_dir: str | os.PathLike | None = None, resume: bool = False,
                on_step: OnStep | None = None, reporter: TrainingReporter | None = None) -> tuple[BLT, float]:
    """Train the BLT (its entropy model frozen) -> (model holding the best weights, best val loss).

    `on_step(step, loss)` is called after every optimizer step; returning True stops the run
    (state saved, resumable). With `out_dir`, best/, last/, state.pt and metrics.jsonl go there;
    `resume=True` continues from `out_dir/state.pt` when it exists.
    """
    cfg = as_config(config)
    model.freeze_entropy_model(True)
    model.train()
    best = fit(Stage("blt", model, model), train_loader, val_loader, cfg, num_epochs=num_epochs or cfg.num_epochs,
               out_dir=out_dir, resume=resume, on_step=on_step, reporter=reporter)
    return model, best


def train_entropy_model(model: BLT, train_loader: Iterable, val_loader: Iterable | None,
                        config: TrainingConfig | dict[str, Any] | None = None, num_epochs: int | None = None, *,
                        out_dir: str | os.PathLike | None = None, resume: bool = False,
                        on_step: OnStep | None = None, reporter: TrainingReporter | None = None
                        ) -> tuple[BLT, float]:
    """Stage 1: train `model.entropy_model` as a causal byte LM (the rest of the model is not
    touched). Saves the whole model, so `DIR/best/` loads with `load_model`."""
    cfg = as_config(config)
    model.freeze_entropy_model(False)
    model.entropy_model.train()
    best = fit(Stage("entropy", model.entropy_model, model), train_loader, val_loader, cfg,
               num_epochs=num_epochs or cfg.num_epochs, out_dir=out_dir, resume=resume, on_step=on_step,
               reporter=reporter)
    return model, best
