"""The training reporter: a run tells it its notes, data, stages, steps and validations as plain
data; without one, training prints nothing."""

from __future__ import annotations

import math

import pytest
import torch

import blt_model.train.step as train_step
from blt_model import BLT
from blt_model.train import (
    DataSummary,
    StageOutcome,
    TrainingError,
    TrainingReporter,
    train,
    train_model,
)
from blt_model.train.reporting import SILENT
from tests.blt_model.test_training import TEXT, loaders, small_cfg, tcfg
from tests.helpers import tiny_config


class Recorder(TrainingReporter):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_note(self, text, warning=False):
        self.events.append(("note", text, warning))

    def on_data(self, summary):
        self.events.append(("data", summary))

    def on_stage(self, name, total_steps, start_step):
        self.events.append(("stage", name, total_steps, start_step))

    def on_step(self, step, loss, n_bytes, lr):
        self.events.append(("step", step, loss, n_bytes, lr))

    def on_validation(self, stage, step, metrics):
        self.events.append(("validation", stage, step, dict(metrics)))

    def on_stage_end(self, name, outcome):
        self.events.append(("end", name, outcome))

    def kinds(self, kind):
        return [e for e in self.events if e[0] == kind]


def test_a_stage_reports_its_steps_validations_and_outcome(tmp_path):
    torch.manual_seed(0)
    rec = Recorder()
    tl, vl = loaders()
    train_model(BLT(small_cfg()), tl, vl, tcfg(max_steps=4, eval_interval=2), out_dir=tmp_path, reporter=rec)
    assert rec.events[0] == ("stage", "blt", 4, 0)
    steps = rec.kinds("step")
    assert [e[1] for e in steps] == [1, 2, 3, 4]
    assert all(math.isfinite(loss) and n > 0 and lr > 0 for _, _, loss, n, lr in steps)
    assert [(e[1], e[2]) for e in rec.kinds("validation")] == [("blt", 2), ("blt", 4)]
    assert {"loss", "bits_per_byte", "accuracy"} <= set(rec.kinds("validation")[0][3])
    kind, name, outcome = rec.events[-1]
    assert (kind, name) == ("end", "blt") and isinstance(outcome, StageOutcome)
    assert (outcome.stop_reason, outcome.step, outcome.nonfinite_steps) == ("max_steps", 4, 0)
    assert outcome.best_val_loss == min(e[3]["loss"] for e in rec.kinds("validation"))


def test_a_failing_stage_ends_without_an_outcome(tmp_path, monkeypatch):
    real = train_step.lm_loss
    monkeypatch.setattr(train_step, "lm_loss", lambda logits, ids, reduction="mean": (
        real(logits, ids, reduction)[0] * math.inf, real(logits, ids, reduction)[1]))
    rec = Recorder()
    tl, vl = loaders()
    with pytest.raises(TrainingError):
        train_model(BLT(small_cfg()), tl, vl, tcfg(max_steps=5, max_nonfinite_steps=2), reporter=rec)
    assert rec.events[-1] == ("end", "blt", None) and not rec.kinds("step")


def test_out_of_memory_back_off_is_a_warning_note(monkeypatch):
    real = train_step.lm_loss

    def picky(logits, ids, reduction="mean"):
        if ids.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(logits, ids, reduction)

    monkeypatch.setattr(train_step, "lm_loss", picky)
    rec = Recorder()
    tl, vl = loaders()
    train_model(BLT(small_cfg()), tl, vl, tcfg(max_steps=1, eval_interval=100), reporter=rec)
    notes = rec.kinds("note")
    assert [n[2] for n in notes] == [True, True] and "micro-batch halved to 1" in notes[-1][1]


def test_train_reports_data_notes_and_both_stages(tmp_path):
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT[:120])  # too small for a batch of full windows: a note says so
    cfg = tiny_config(decoder_layers=1, window_size=32, entropy_context_size=32, max_position_embeddings=256,
                      target_mean_patch_size=3.0)
    rec = Recorder()
    train([str(data)], out_dir=tmp_path / "run", model_config=cfg, reporter=rec,
          training=tcfg(max_steps=2, entropy_max_steps=1, eval_interval=100, eval_max_batches=1))
    (summary,) = [e[1] for e in rec.kinds("data")]
    assert isinstance(summary, DataSummary) and summary.valid is None and summary.valid_bytes > 0
    assert summary.train.documents == 1
    assert any(w and text.startswith("small data") for _, text, w in rec.kinds("note"))
    assert any(text.startswith("entropy threshold") for _, text, _ in rec.kinds("note"))
    assert [e[1] for e in rec.kinds("stage")] == ["entropy", "blt"]
    assert [e[1] for e in rec.kinds("end")] == ["entropy", "blt"]


def test_the_default_reporter_is_silent(tmp_path, capfd):
    for method, args in (("on_note", ("x",)), ("on_stage", ("blt", 3, 0)), ("on_step", (1, 1.0, 10, 1e-3)),
                         ("on_validation", ("blt", 1, {"loss": 1.0})), ("on_stage_end", ("blt", None))):
        assert getattr(SILENT, method)(*args) is None
    data = tmp_path / "corpus.txt"
    data.write_text(TEXT)
    train([str(data)], out_dir=tmp_path / "run", model_config=small_cfg(),
          training=tcfg(max_steps=2, eval_interval=1, eval_max_batches=1, progress=True))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_time_budget_alone_reports_no_step_total(tmp_path):
    """Fine-tuning with --max-minutes repeats the data until the time is spent: the progress bar
    had a total of a million epochs' steps; a time budget without --max-steps has no total."""
    torch.manual_seed(0)
    rec = Recorder()
    tl, vl = loaders()
    train_model(BLT(small_cfg()), tl, vl, tcfg(max_minutes=0.02, num_epochs=1_000_000, eval_interval=1000),
                out_dir=tmp_path, reporter=rec)
    assert rec.kinds("stage")[0][2] is None
    assert rec.kinds("step")  # it trained until the time was spent
