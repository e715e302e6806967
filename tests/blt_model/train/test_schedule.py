"""The learning-rate schedule: warmup, then a cosine over steps, time, or whichever ends first."""

from __future__ import annotations

import pytest

from blt_model.train import LearningRateSchedule, TrainingConfig
from blt_model.train.schedule import decay_horizon


def test_the_horizon_follows_the_budgets():
    assert decay_horizon(TrainingConfig(schedule_steps=70, max_steps=50), 10, 3) == 70
    assert decay_horizon(TrainingConfig(max_steps=50), 10, 3) == 30  # the epochs end first
    assert decay_horizon(TrainingConfig(max_steps=50), None, 3) == 50
    assert decay_horizon(TrainingConfig(max_minutes=5), 10, 3) is None  # the clock decides
    assert decay_horizon(TrainingConfig(), 10, 3) == 30
    assert decay_horizon(TrainingConfig(), None, 3) == 10_000


def test_warmup_then_decay_over_the_time_budget():
    s = LearningRateSchedule.for_run(TrainingConfig(learning_rate=1e-3, warmup_steps=4, max_minutes=1.0,
                                                    min_lr_ratio=0.1), 100, 1)
    assert s.horizon is None and s.budget_s == 60.0
    assert s.lr(0, 0.0) == pytest.approx(2.5e-4) and s.lr(3, 0.0) == pytest.approx(1e-3)
    assert s.lr(10, 0.0) == pytest.approx(1e-3)
    assert s.lr(10, 30.0) == pytest.approx(5.5e-4)
    assert s.lr(10, 60.0) == pytest.approx(1e-4) and s.lr(10, 600.0) == pytest.approx(1e-4)
