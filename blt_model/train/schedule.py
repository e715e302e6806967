"""The learning-rate schedule: linear warmup, then a cosine decay over the run's step budget, its
time budget, or both (whichever ends first)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TrainingConfig

__all__ = ["LearningRateSchedule", "decay_horizon", "lr_factor"]


def lr_factor(step: int, warmup: int, horizon: int | None, min_ratio: float,
              time_fraction: float | None = None) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to `min_ratio`.

    Progress through the decay is the larger of the step progress (`step / horizon`) and
    `time_fraction` (elapsed / budget when the run has a wall-clock budget), so `--max-minutes`
    alone decays over the time budget and a run with both budgets decays by the one that ends first.
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = 0.0
    if horizon is not None:
        progress = (step - warmup) / max(1, horizon - warmup)
    if time_fraction is not None:
        progress = max(progress, time_fraction)
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def decay_horizon(cfg: TrainingConfig, steps_per_epoch: int | None, num_epochs: int) -> int | None:
    """Steps over which the cosine decays; None: a wall-clock budget alone, the decay follows the clock."""
    if cfg.schedule_steps:
        return cfg.schedule_steps
    if cfg.max_steps:
        return min(cfg.max_steps, steps_per_epoch * num_epochs) if steps_per_epoch else cfg.max_steps
    if cfg.max_minutes:
        return None
    return steps_per_epoch * num_epochs if steps_per_epoch else 10_000


@dataclass(frozen=True)
class LearningRateSchedule:
    """The learning rate at an optimizer step, given the training seconds spent so far."""

    peak: float
    warmup_steps: int
    horizon: int | None  # see decay_horizon
    min_ratio: float
    budget_s: float | None  # the wall-clock budget (the run's, over every resume); None = none

    @classmethod
    def for_run(cls, cfg: TrainingConfig, steps_per_epoch: int | None, num_epochs: int) -> LearningRateSchedule:
        return cls(cfg.learning_rate, cfg.warmup_steps, decay_horizon(cfg, steps_per_epoch, num_epochs),
                   cfg.min_lr_ratio, cfg.max_minutes * 60 if cfg.max_minutes else None)

    def lr(self, step: int, elapsed_s: float) -> float:
        fraction = elapsed_s / self.budget_s if self.budget_s else None
        return self.peak * lr_factor(step, self.warmup_steps, self.horizon, self.min_ratio, fraction)
