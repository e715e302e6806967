"""TrainState: its fields round-trip through state.pt, and resuming restores them with the model,
the optimizer and the random number generators."""

from __future__ import annotations

import math
import random

import pytest
import torch

from blt_model import BLT
from blt_model.train import TrainingConfig, TrainState, load_state, train_model
from blt_model.train.errors import RunFileError
from blt_model.train.state import STATE_NAME, resume_state, save_state
from blt_model.train.step import make_optimizer
from tests.blt_model.test_training import loaders, small_cfg, tcfg


def test_fields_round_trip_and_old_states_resume_with_defaults():
    st = TrainState(step=7, epoch=1, batch_in_epoch=3, best_val_loss=1.25, bad_evals=2, nonfinite_steps=1,
                    consecutive_nonfinite=0, micro_batch_size=2, elapsed_s=12.5, bytes_seen=999)
    assert TrainState.from_dict({**st.to_dict(), "format": 1, "stage": "blt", "model": {}}) == st
    old = TrainState.from_dict({"step": 4, "best_val_loss": 2.0})  # written before elapsed_s existed
    assert old.step == 4 and old.elapsed_s == 0.0 and old.bytes_seen == 0
    assert math.isinf(TrainState().best_val_loss)


def test_save_then_resume_restores_counters_weights_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    model = BLT(small_cfg())
    opt = make_optimizer(model, TrainingConfig())
    model(torch.randint(4, 260, (2, 16))).sum().backward()
    opt.step()
    st = TrainState(step=3, elapsed_s=4.5, bytes_seen=120, micro_batch_size=1)
    random.seed(5)
    save_state(tmp_path / STATE_NAME, "blt", st, model, opt, TrainingConfig())
    expect_torch, expect_py = torch.rand(3), random.random()

    saved = load_state(tmp_path / STATE_NAME)
    assert saved["stage"] == "blt" and TrainState.from_dict(saved) == st
    torch.manual_seed(1)
    other = BLT(small_cfg())
    other_opt = make_optimizer(other, TrainingConfig())
    assert resume_state(tmp_path / STATE_NAME, "blt", other, other_opt) == st
    for k, v in model.state_dict().items():
        assert torch.equal(other.state_dict()[k], v), k
    assert other_opt.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert torch.equal(torch.rand(3), expect_torch) and random.random() == expect_py

    with pytest.raises(RunFileError, match="state of stage 'blt', expected 'entropy'"):
        resume_state(tmp_path / STATE_NAME, "entropy", other, other_opt)
    with pytest.raises(RunFileError, match="does not match this model"):
        resume_state(tmp_path / STATE_NAME, "blt", BLT(small_cfg(decoder_layers=2)), other_opt)


def test_a_resumed_run_continues_the_counters(tmp_path):
    torch.manual_seed(0)
    model = BLT(small_cfg())
    tl, vl = loaders()
    train_model(model, tl, vl, tcfg(max_steps=2, eval_interval=100), out_dir=tmp_path)
    first = TrainState.from_dict(load_state(tmp_path / STATE_NAME))
    assert first.step == 2 and first.bytes_seen > 0 and first.elapsed_s > 0 and math.isfinite(first.best_val_loss)
    tl, vl = loaders()
    train_model(model, tl, vl, tcfg(max_steps=3, eval_interval=100), out_dir=tmp_path, resume=True)
    then = TrainState.from_dict(load_state(tmp_path / STATE_NAME))
    assert then.step == 3 and then.bytes_seen > first.bytes_seen and then.elapsed_s > first.elapsed_s
    assert then.batch_in_epoch == first.batch_in_epoch + 1  # the data position moved on by one batch
